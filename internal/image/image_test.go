/*
Copyright 2026 The nango-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package image

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// options are two platforms' fake binaries, which is all Build reads of them.
func options(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	o := Options{
		Binaries:       map[string]string{},
		CACertificates: filepath.Join(dir, "ca.crt"),
		Version:        "1.2.3",
		Revision:       "0123456789abcdef",
		Created:        time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
	}
	for _, p := range []string{"linux/arm64", "linux/amd64"} {
		path := filepath.Join(dir, filepath.Base(p))
		if err := os.WriteFile(path, []byte("manager for "+p), 0o755); err != nil {
			t.Fatal(err)
		}
		o.Binaries[p] = path
	}
	if err := os.WriteFile(o.CACertificates, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestBuildIsReproducible(t *testing.T) {
	o := options(t)
	first, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := first.Digest()
	b, _ := second.Digest()
	if a != b {
		t.Fatalf("two builds of the same inputs: %s and %s", a, b)
	}

	dirs := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	tars := make([][]byte, 0, len(dirs))
	for _, dir := range dirs {
		if err := WriteLayout(dir, first, o.Version); err != nil {
			t.Fatal(err)
		}
		if err := WriteTar(dir, dir+".tar"); err != nil {
			t.Fatal(err)
		}
		contents, err := os.ReadFile(dir + ".tar")
		if err != nil {
			t.Fatal(err)
		}
		tars = append(tars, contents)
		read, err := ReadLayout(dir)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := read.Digest(); d != a {
			t.Fatalf("the layout in %s holds %s, not the built %s", dir, d, a)
		}
	}
	if string(tars[0]) != string(tars[1]) {
		t.Fatal("two tar files of the same layout differ")
	}

	o.Created = o.Created.Add(time.Second)
	other, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := other.Digest(); c == a {
		t.Fatal("another commit time gave the same digest: the time is not in the image")
	}
}

func TestImageConfigAndFiles(t *testing.T) {
	o := options(t)
	index, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if manifest.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s", manifest.MediaType)
	}
	platforms := make([]string, 0, len(manifest.Manifests))
	for _, desc := range manifest.Manifests {
		platforms = append(platforms, desc.Platform.String())
		img, err := index.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		config, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := config.OS + "/" + config.Architecture; got != desc.Platform.String() {
			t.Errorf("the %s image's config says %s", desc.Platform, got)
		}
		if config.Config.User != "65532:65532" || !slices.Equal(config.Config.Entrypoint, []string{"/manager"}) {
			t.Errorf("user %q, entrypoint %q", config.Config.User, config.Config.Entrypoint)
		}
		if !config.Created.Equal(o.Created) {
			t.Errorf("created %s, want the commit's %s", config.Created, o.Created)
		}
		for key, want := range map[string]string{
			"org.opencontainers.image.source":   Source,
			"org.opencontainers.image.version":  "1.2.3",
			"org.opencontainers.image.revision": "0123456789abcdef",
			"org.opencontainers.image.licenses": "Apache-2.0",
		} {
			if got := config.Config.Labels[key]; got != want {
				t.Errorf("label %s = %q, want %q", key, got, want)
			}
		}

		files := filesOf(t, img)
		want := []string{
			"etc/", "etc/group", "etc/nsswitch.conf", "etc/passwd", "etc/ssl/", "etc/ssl/certs/",
			"etc/ssl/certs/ca-certificates.crt", "home/", "home/nonroot/", "tmp/", "manager",
		}
		names := make([]string, 0, len(files))
		for _, h := range files {
			names = append(names, h.Name)
			if !h.ModTime.Equal(o.Created) {
				t.Errorf("%s has time %s, not the commit's", h.Name, h.ModTime)
			}
		}
		if !slices.Equal(names, want) {
			t.Errorf("the %s image's files:\n%q\nwant\n%q (no shell, nothing else)", desc.Platform, names, want)
		}
		if m := files[len(files)-1]; m.Mode != 0o755 || m.Uid != 0 {
			t.Errorf("/manager mode %o owner %d", m.Mode, m.Uid)
		}
	}
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %q", platforms)
	}
}

func TestBuildRefusesWhatCannotWork(t *testing.T) {
	o := options(t)
	o.Binaries = nil
	if _, err := Build(o); err == nil {
		t.Error("an image without a binary was built")
	}
	o = options(t)
	o.Revision = ""
	if _, err := Build(o); err == nil {
		t.Error("an image without a revision was built")
	}
	o = options(t)
	o.CACertificates = filepath.Join(t.TempDir(), "missing")
	if _, err := Build(o); err == nil {
		t.Error("an image without CA certificates was built")
	}
}

// filesOf lists the tar headers of every layer of img, in order.
func filesOf(t *testing.T, img v1.Image) []*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var headers []*tar.Header
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		r := tar.NewReader(rc)
		for {
			h, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			headers = append(headers, h)
		}
		_ = rc.Close()
	}
	return headers
}
