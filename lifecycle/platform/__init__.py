"""What pack does: resolve the builder, run image, cache and targets, then run the phases.

Each module's docstring says what it owns. ``stacks`` makes the build and run images that
builders stand on, from Debian packages with no registry pull; its ``stack_*`` helpers hold
the stack.toml format, .deb files, mmdebstrap runs, the rootfs layer and progress reporting.
"""
