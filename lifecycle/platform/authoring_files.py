"""The skeleton files both languages share: buildpack.toml, the served page and the README.

``{{name}}`` placeholders are filled by ``authoring.render``; ``{{targets}}`` is the
``[[targets]]`` tables (DET-11) and ``{{language_note}}`` a paragraph per language.
"""

from __future__ import annotations

__all__ = ["BASH_NOTE", "BUILDPACK_TOML", "INDEX_HTML", "PYTHON_NOTE", "README"]

BUILDPACK_TOML = """\
# {{id}}: made by `pybuild buildpack new`; README.md explains each file.
api = "{{api}}"

[buildpack]
id = "{{id}}"
version = "{{version}}"
name = "{{id}}"
description = "A launch layer with a web and a hello process ({{language}} skeleton)"

# Where it runs: each [[targets]] is matched against the run image (os, arch, variant, distros).
{{targets}}
"""

INDEX_HTML = """\
<!doctype html>
<title>{{id}}</title>
<h1>Hello from {{id}} {{version}}</h1>
<p>Served by the web process of the hello layer.</p>
"""

BASH_NOTE = """\
`bin/detect` and `bin/build` are bash scripts that need only bash and busybox, and the
processes are POSIX sh, so this buildpack runs on every pybuild stack: `hello-web` serves
with busybox httpd on `pybuild/run:tiny` and with python3 on `pybuild/run:bookworm`. The
tiny builder, `pybuild/builder:tiny`, builds in seconds."""

PYTHON_NOTE = """\
`bin/detect`, `bin/build` and the processes are Python 3 scripts (`#!/usr/bin/env python3`,
standard library only), so the build image and the run image need python3. Use the default
builder, `pybuild/builder:bookworm`, which has it; the tiny builder (`pybuild/builder:tiny`)
has no Python, and building with it fails in detect. `pybuild buildpack test` runs the
scripts on this machine, so it needs only this machine's python3."""

README = """\
# {{id}}

A buildpack made by `pybuild buildpack new` (Buildpack API {{api}}, {{language}}). It takes
part in the build of every app, adds one launch layer, `hello`, and declares two processes:
`web` (the default) serves a page on `$PORT`, and `hello` prints a greeting.

{{language_note}}

## Files

- `buildpack.toml`: who the buildpack is (`id`, `version`), the Buildpack API it speaks
  (`api`) and where it runs (`[[targets]]`, matched against the run image's os, arch, distro).
- `bin/detect`: runs first, in the app dir. Exit 0 to take part in the build, 100 to step
  aside; anything else is an error. It writes the build plan: it provides and requires `hello`.
- `bin/build`: runs when detect passed, in the app dir. It copies `layer/` into the `hello`
  layer and writes `hello.toml` (`[types] launch = true`, `[metadata] content-hash`) and
  `launch.toml` (the processes).
- `layer/bin/hello`: the `hello` process; prints `$HELLO_GREETING from {{id}}`.
- `layer/bin/hello-web`: the `web` process; serves `layer/www/` on `$PORT` (default 8080).
- `layer/www/index.html`: the page it serves.

When the app runs, the layer's `bin/` is on `PATH`, which is how the processes find `hello`
and `hello-web`, and `env.launch/HELLO_GREETING.default` sets `HELLO_GREETING` unless the
app's environment already does. The `content-hash` in the layer's `[metadata]` records what
the layer was made from (the files under `layer/` and the greeting): when `bin/build` finds
the same hash in `hello.toml`, it keeps the layer instead of making it again.

## Try it

The fast inner loop runs detect and build of this buildpack alone, on this machine, with
their output as it comes, and shows the layers, processes and environment they produce. Run
it from the directory where you ran `pybuild buildpack new`, with any app directory:

```sh
pybuild buildpack test {{path}} --path APP_DIR
pybuild buildpack test {{path}} --path APP_DIR --env BP_GREETING=Howdy
pybuild buildpack test {{path}} --path APP_DIR --layers /tmp/hello-layers   # run twice: reused
pybuild buildpack validate {{path}}                                         # buildpack.toml, bin/
```

Then build an app image with it, and run its processes:

```sh
pybuild build hello-app --path APP_DIR --buildpack {{path}} --builder {{builder}}
pybuild run hello-app --process hello
pybuild run hello-app -e PORT=8080      # the web process: open http://localhost:8080/
```

`pybuild buildpack test` exits like the lifecycle does: 20 when detect steps aside, 21 when
it errors, 51 when `bin/build` fails.

## Make it yours

- `bin/detect`: pass only for the apps you support (look for their files) and require what
  you need from earlier buildpacks in the plan.
- `bin/build`: put what the app needs in layers. `[types]` says where a layer goes: `launch`
  (the app image), `build` (later buildpacks' environment) and `cache` (kept for the next
  build). Hash what a layer is made from into `[metadata]`, so an unchanged layer is kept.
- `launch.toml`: one `[[processes]]` table per way to run the app; `default = true` on one.
- `buildpack.toml`: raise `version` for every release, and list the `[[targets]]` you test.
"""
