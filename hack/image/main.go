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

// Command image builds the manager's OCI image without a container engine (`make image`) and
// pushes it (`make image-push`); see internal/image.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nango-operator/nango-operator/internal/image"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: image build|push [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = build(os.Args[2:])
	case "push":
		err = push(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: build or push", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func build(args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	o := image.Options{Binaries: map[string]string{}}
	fs.Func("binary", "PLATFORM=PATH of a static manager binary, e.g. linux/amd64=bin/manager-linux-amd64; repeat per platform",
		func(s string) error {
			platform, path, ok := strings.Cut(s, "=")
			if !ok || platform == "" || path == "" {
				return fmt.Errorf("want PLATFORM=PATH, got %q", s)
			}
			o.Binaries[platform] = path
			return nil
		})
	fs.StringVar(&o.CACertificates, "ca-certificates", "/etc/ssl/certs/ca-certificates.crt",
		"The PEM bundle of CA certificates the image carries.")
	fs.StringVar(&o.Version, "version", "", "The release, for the labels and the layout's tag.")
	fs.StringVar(&o.Revision, "revision", "", "The git commit, for the labels.")
	epoch := fs.String("source-date-epoch", "",
		"The commit's time in seconds since 1970 (git log -1 --format=%ct): every timestamp in the image.")
	layoutDir := fs.String("layout", "", "The directory to write the OCI image layout to (replaced).")
	tarPath := fs.String("tar", "", "Also write the layout as this tar file, when set.")
	_ = fs.Parse(args)

	seconds, err := strconv.ParseInt(*epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("--source-date-epoch %q: %w", *epoch, err)
	}
	o.Created = time.Unix(seconds, 0)
	if *layoutDir == "" {
		return fmt.Errorf("--layout is required")
	}
	index, err := image.Build(o)
	if err != nil {
		return err
	}
	if err := image.WriteLayout(*layoutDir, index, o.Version); err != nil {
		return err
	}
	if *tarPath != "" {
		if err := image.WriteTar(*layoutDir, *tarPath); err != nil {
			return fmt.Errorf("write %s: %w", *tarPath, err)
		}
	}
	digest, err := index.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("built %s (%s) in %s\n", digest, o.Version, *layoutDir)
	return nil
}

func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	layoutDir := fs.String("layout", "", "The OCI image layout `make image` wrote.")
	to := fs.String("to", "", "The image reference to push to, registry/name:tag.")
	_ = fs.Parse(args)
	index, err := image.ReadLayout(*layoutDir)
	if err != nil {
		return err
	}
	digest, err := image.Push(index, *to)
	if err != nil {
		return err
	}
	fmt.Printf("pushed %s@%s\n", *to, digest)
	return nil
}
