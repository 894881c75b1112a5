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

// Package image builds the manager's OCI image as data, the way ko and apko do: the layers are
// tar streams written here, the config and manifests are JSON, and
// github.com/google/go-containerregistry turns them into an image index that is written as an
// OCI image layout or pushed to a registry. No container engine is involved, and one commit
// always gives one digest: every timestamp is the commit's, tar entries are sorted and owned
// by numeric ids, and nothing of the build machine but the CA bundle gets in.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// Entrypoint is the manager's path in the image, as in the Dockerfile.
	Entrypoint = "/manager"
	// User is the unprivileged user and group the manager runs as (distroless's nonroot).
	User = "65532:65532"
	// CABundle is where the image keeps the CA certificates, where Go looks first.
	CABundle = "/etc/ssl/certs/ca-certificates.crt"
	// Source is the repository the labels name.
	Source = "https://github.com/nango-operator/nango-operator"
	// License is the SPDX expression the labels name.
	License = "Apache-2.0"
)

// Options say what goes into the image.
type Options struct {
	// Binaries maps a platform ("linux/amd64") to the path of a static manager binary built
	// for it (CGO_ENABLED=0).
	Binaries map[string]string
	// CACertificates is the path of a PEM bundle of CA certificates, such as the one of
	// Debian's ca-certificates package (/etc/ssl/certs/ca-certificates.crt).
	CACertificates string
	// Version and Revision are the release and the commit, for the labels.
	Version, Revision string
	// Created is the commit's time: every file and the config carry it.
	Created time.Time
}

// Build answers an image index holding one image per platform of o.Binaries.
func Build(o Options) (v1.ImageIndex, error) {
	if len(o.Binaries) == 0 {
		return nil, fmt.Errorf("no manager binary given: name at least one platform's")
	}
	if o.Version == "" || o.Revision == "" || o.Created.IsZero() {
		return nil, fmt.Errorf("version, revision and creation time are all needed for the labels and a reproducible build")
	}
	certs, err := os.ReadFile(o.CACertificates)
	if err != nil {
		return nil, fmt.Errorf("read the CA bundle (install Debian's ca-certificates, or name a PEM file): %w", err)
	}
	created := o.Created.UTC()
	base, err := layer(created, baseFiles(certs))
	if err != nil {
		return nil, fmt.Errorf("build the base layer: %w", err)
	}

	platforms := make([]string, 0, len(o.Binaries))
	for p := range o.Binaries {
		platforms = append(platforms, p)
	}
	slices.Sort(platforms)
	index := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		platform, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", p, err)
		}
		img, err := platformImage(o, created, *platform, base, o.Binaries[p])
		if err != nil {
			return nil, fmt.Errorf("build the %s image: %w", p, err)
		}
		index = mutate.AppendManifests(index, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: platform},
		})
	}
	return index, nil
}

// platformImage is the base layer, then the manager's layer, with the config a pod needs.
func platformImage(o Options, created time.Time, platform v1.Platform, base v1.Layer, binary string) (v1.Image, error) {
	manager, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("read the manager binary: %w", err)
	}
	top, err := layer(created, []file{{name: strings.TrimPrefix(Entrypoint, "/"), mode: 0o755, contents: manager}})
	if err != nil {
		return nil, fmt.Errorf("build the manager's layer: %w", err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: platform.Architecture,
		OS:           platform.OS,
		Variant:      platform.Variant,
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			Entrypoint: []string{Entrypoint},
			User:       User,
			WorkingDir: "/",
			Env:        []string{"PATH=/", "SSL_CERT_FILE=" + CABundle},
			Labels:     Labels(o.Version, o.Revision, created),
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "nango-operator image: passwd, group, CA certificates, /tmp", Comment: "base"}},
		mutate.Addendum{Layer: top, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "nango-operator image: " + Entrypoint, Comment: "manager"}},
	)
}

// Labels are the image's OCI labels (org.opencontainers.image.*).
func Labels(version, revision string, created time.Time) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "nango-operator",
		"org.opencontainers.image.description": "Keeps a copy of Nango-synced records in your own PostgreSQL or SQLite",
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.url":         Source,
		"org.opencontainers.image.licenses":    License,
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.revision":    revision,
		"org.opencontainers.image.created":     created.UTC().Format(time.RFC3339),
	}
}

// file is one entry of a layer: a directory when contents is nil and dir is set.
type file struct {
	name     string
	dir      bool
	mode     int64
	uid, gid int
	contents []byte
}

// baseFiles is what distroless's static:nonroot gives a static Go binary and nothing more:
// the users it runs as, where the resolver looks, the CA certificates, a writable /tmp and
// the nonroot user's home. There is no shell, no package manager, no libc.
func baseFiles(certs []byte) []file {
	return []file{
		{name: "etc", dir: true, mode: 0o755},
		{name: "etc/group", mode: 0o644, contents: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
		{name: "etc/nsswitch.conf", mode: 0o644, contents: []byte("hosts: files dns\n")},
		{name: "etc/passwd", mode: 0o644, contents: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
				"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/ssl", dir: true, mode: 0o755},
		{name: "etc/ssl/certs", dir: true, mode: 0o755},
		{name: strings.TrimPrefix(CABundle, "/"), mode: 0o644, contents: certs},
		{name: "home", dir: true, mode: 0o755},
		{name: "home/nonroot", dir: true, mode: 0o700, uid: 65532, gid: 65532},
		{name: "tmp", dir: true, mode: 0o1777},
	}
}

// layer writes files as one gzipped OCI layer, in name order, every entry stamped with
// created and numeric owners only.
func layer(created time.Time, files []file) (v1.Layer, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: created,
			Format:  tar.FormatPAX,
		}
		if f.dir {
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.contents))
		}
		if err := w.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if _, err := w.Write(f.contents); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	contents := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(contents)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}
