"""Image extensions in detection (DET-16), fed to the buildpack resolver unchanged.

`order-extensions` goes in front of every group of the order (after system.toml's `pre` and
`post` are merged, DET-13) as one optional composite element whose groups are the
`order-extensions` groups, every extension in them optional. The resolver then expands it as it
expands a composite (DET-1, DET-2): each extension group in turn, then none. Extensions are
offered to the resolver as component buildpacks; what differs is kept here:

- an extension runs `bin/detect` with `CNB_EXTENSION_DIR`, and one without `bin/detect` passes;
- its plan may only provide (a `requires` is an error), so an extension that provides what no
  later buildpack requires is dropped like any optional element (DET-9);
- one whose `[[targets]]` do not match the run image does not apply: it fails, it is no error;
- only a passing buildpack makes a group pass (DET-6, `DetectResult.extension`);
- the winning group splits into `[[group]]` and `[[group-extensions]]` (DET-14), and plan
  providers that are extensions get `extension = true` (DET-10).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lifecycle.api import ApiVersion
from lifecycle.cnb.buildpack import BuildpackDescriptor, BuildpackInfo
from lifecycle.cnb.extension import ExtensionDir
from lifecycle.cnb.order import GroupElement, OrderEntry, OrderGroup, SystemToml
from lifecycle.cnb.plan import PlanEntry, PlanProvider, PlanToml
from lifecycle.env import Env
from lifecycle.errors import ConfigError, ExitCode
from lifecycle.execution.executor import BuildpackExecutor
from lifecycle.phases.generate import detect_extension
from lifecycle.phases.resolve import DetectResult, DetectStatus, Resolution, apply_system

__all__ = ["ORDER_EXTENSIONS_ID", "ExtensionOrder"]

ORDER_EXTENSIONS_ID = "pybuild/order-extensions"
"""The ID of the composite that stands for `order-extensions` in front of each group."""
_ORDER_EXTENSIONS = OrderEntry(id=ORDER_EXTENSIONS_ID, version="0", optional=True)


@dataclass(frozen=True)
class ExtensionOrder:
    """The extensions available to a build and their `order-extensions` (empty: no extensions)."""

    extensions: Mapping[str, ExtensionDir] = field(default_factory=dict)  # "id@version" -> extension
    order: Sequence[OrderGroup] = ()

    def knows(self, entry: OrderEntry) -> bool:
        return bool(self.order) and (entry.ref == _ORDER_EXTENSIONS.ref or entry.ref in self.extensions)

    def is_extension(self, ref: str) -> bool:
        return bool(self.order) and ref in self.extensions

    def lookup(self, entry: OrderEntry) -> BuildpackDescriptor:
        """The composite standing for `order-extensions`, or an extension as a component."""
        if entry.ref == _ORDER_EXTENSIONS.ref:
            groups = tuple(
                OrderGroup(group=tuple(e.model_copy(update={"optional": True}) for e in g.group))
                for g in self.order
            )
            info = BuildpackInfo(id=ORDER_EXTENSIONS_ID, version="0")
            return BuildpackDescriptor(api=ApiVersion(0, 12), buildpack=info, order=groups)
        found = self.extensions.get(entry.ref)
        if found is None:
            raise ConfigError(
                "detect",
                f"order-extensions names {entry.ref}, which is not an available image extension "
                "(add it to the builder's [[extensions]])",
                exit_code=ExitCode.DETECT_OTHER,
            )
        ext = found.descriptor
        info = BuildpackInfo(
            id=ext.extension.id,
            version=ext.extension.version,
            name=ext.extension.name,
            homepage=ext.extension.homepage,
            clear_env=ext.extension.clear_env,
            exec_env=ext.extension.exec_env,
        )
        return BuildpackDescriptor(api=ext.api, buildpack=info, targets=ext.targets)

    def detect(
        self, ref: str, executor: BuildpackExecutor, env: Env, *, target_matches: bool
    ) -> tuple[DetectResult, str]:
        """Run one extension's detect; one that does not support the run image's target fails."""
        if not target_matches:
            return DetectResult(DetectStatus.FAIL, extension=True), ""
        return detect_extension(executor, self.extensions[ref], env)

    def prepend(
        self, order: Sequence[OrderGroup], system: SystemToml | None
    ) -> tuple[Sequence[OrderGroup], SystemToml | None]:
        """`order-extensions` in front of each group, after system buildpacks are merged (DET-13)."""
        if not self.order:
            return order, system
        merged = apply_system(order, system) if system is not None else tuple(order)
        for group in merged:
            for entry in group.group:
                if entry.ref in self.extensions:
                    raise ConfigError(
                        "detect",
                        f"the order names image extension {entry.ref} (move it to [[order-extensions]])",
                        exit_code=ExitCode.DETECT_OTHER,
                    )
        return tuple(OrderGroup(group=(_ORDER_EXTENSIONS, *g.group)) for g in merged), None

    def split(self, resolution: Resolution) -> tuple[list[GroupElement], list[GroupElement], PlanToml]:
        """The buildpacks and the extensions of the winning group, and its plan (DET-10, DET-14)."""
        buildpacks = [e for e in resolution.group if not self.is_extension(e.ref)]
        extensions = [e for e in resolution.group if self.is_extension(e.ref)]
        if not extensions:
            return buildpacks, [], resolution.plan
        entries = tuple(
            PlanEntry(providers=tuple(self._provider(p) for p in entry.providers), requires=entry.requires)
            for entry in resolution.plan.entries
        )
        return buildpacks, extensions, PlanToml(entries=entries)

    def _provider(self, provider: PlanProvider) -> PlanProvider:
        if self.is_extension(f"{provider.id}@{provider.version}"):
            return provider.model_copy(update={"extension": True})
        return provider
