"""Monitoring coverage per service: what the documents describe versus what is actually checked.

The "blind spots" list: operations skipped for want of an example value, data-changing operations
left out on purpose, unresolved variables, exclusions, and documents that could not be read.
Built from `DocumentFile`s (what the loader yields), so it needs no run results and works the
same under xdist: the controller can `scan` the pools itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .documents import DocumentFile, is_document, service_and_module
from .importers.refs import FragmentIndex
from .load import load_document
from .poolfiles import files_under

SKIP_KINDS = ("no_example", "unresolved", "write", "excluded", "unsupported", "document")
KIND_LABELS = {
    "zh": {"no_example": "缺少示例值", "unresolved": "变量未定义", "write": "数据变更（未启用 allow_write）",
           "excluded": "被 overrides 排除", "unsupported": "不支持", "document": "文档标记跳过"},
    "en": {"no_example": "no example value", "unresolved": "unresolved variable",
           "write": "data-changing (allow_write not enabled)", "excluded": "excluded by overrides",
           "unsupported": "unsupported", "document": "skipped in document"},
}  # fmt: skip
_TEXT = {
    "zh": {"title": "接口覆盖率（监控盲区）", "summary": "文档中 {documented} 个接口：监控 {monitored} 个（{pct}），"
           "跳过 {skipped} 个，其中数据变更 {write} 个；文档错误 {invalid} 个，出错文件 {error_files} 个",
           "errors": "有错误的文档", "n_errors": "{n} 个错误", "more": "……另有 {n} 个", "none": "没有接口文档",
           "service": "服务", "documented": "文档接口", "monitored": "已监控", "skipped": "跳过",
           "write": "数据变更", "invalid": "文档错误"},
    "en": {"title": "Monitoring coverage (blind spots)", "summary": "{documented} documented: {monitored} monitored "
           "({pct}), {skipped} skipped of which {write} data-changing; {invalid} invalid, {error_files} document(s) "
           "with errors", "errors": "documents with errors", "n_errors": "{n} error(s)", "more": "... and {n} more",
           "none": "no interface documents", "service": "service", "documented": "documented",
           "monitored": "monitored", "skipped": "skipped", "write": "data-changing", "invalid": "invalid"},
}  # fmt: skip
MAX_LISTED = 30  # per service and kind: the report must stay readable for a 500-operation spec


@dataclass
class Skipped:
    name: str
    method: str
    path: str
    kind: str  # one of SKIP_KINDS
    reason: str
    file: str
    line: int | None = None


@dataclass
class ServiceCoverage:
    service: str
    documented: int = 0  # interfaces (monitored or skipped) + entries that could not be read
    monitored: int = 0
    invalid: int = 0  # entries (operations) with a document error
    skipped: list[Skipped] = field(default_factory=list)
    error_files: dict[str, int] = field(default_factory=dict)  # file -> number of errors

    @property
    def write_excluded(self) -> int:
        return sum(1 for s in self.skipped if s.kind == "write")

    def by_kind(self) -> dict[str, list[Skipped]]:
        out: dict[str, list[Skipped]] = {}
        for s in self.skipped:
            out.setdefault(s.kind, []).append(s)
        return {k: out[k] for k in sorted(out, key=lambda k: SKIP_KINDS.index(k) if k in SKIP_KINDS else 99)}


@dataclass
class Scan:
    """Documents found under the pools, and each file's service (also for files that yielded nothing)."""

    files: list[DocumentFile] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)  # DocumentFile.file -> service


def scan(roots: Iterable[Path], *, rootdir: Path | None = None, environ: Mapping[str, str] | None = None) -> Scan:
    """Load every document under the pool roots (as the collection would), for the coverage report."""
    out = Scan()
    for root in roots:
        fragments = FragmentIndex(root)
        candidates = [root] if root.is_file() else files_under(root)
        for path in candidates:
            if not path.is_file() or not is_document(path):
                continue
            display = str(path)
            if rootdir is not None:
                try:
                    display = os.path.relpath(path, rootdir)
                except ValueError:  # another drive on Windows
                    pass
            doc = load_document(path, root, display=display, environ=environ)
            if doc.errors and not doc.interfaces and path in fragments:
                continue  # a spec's external $ref target, read with the spec (as the collection does)
            out.files.append(doc)
            out.services[doc.file] = service_and_module(path, root)[0]
    return out


def coverage(files: list[DocumentFile], services: Mapping[str, str] | None = None) -> dict[str, ServiceCoverage]:
    """Per service (sorted): documented, monitored, skipped (with kind and reason), invalid, error files."""
    out: dict[str, ServiceCoverage] = {}
    for doc in files:
        service = (services or {}).get(doc.file) or (doc.interfaces[0].service if doc.interfaces else
                                                     Path(doc.file).parent.name or Path(doc.file).stem)
        cov = out.setdefault(service, ServiceCoverage(service))
        for itf in doc.interfaces:
            cov.documented += 1
            if itf.skip is None:
                cov.monitored += 1
            else:
                cov.skipped.append(Skipped(itf.name, itf.method, itf.url or itf.path or "", itf.skip_kind or "document",
                                           itf.skip, itf.file, itf.line))
        entry_errors = [e for e in doc.errors if e.index is not None]
        cov.documented += len(entry_errors)
        cov.invalid += len(entry_errors)
        if doc.errors:
            cov.error_files[doc.file] = len(doc.errors)
    return dict(sorted(out.items()))


def to_dict(report: Mapping[str, ServiceCoverage]) -> dict[str, Any]:
    """JSON-able, for --apimon-json consumers."""
    return {name: {**asdict(cov), "write_excluded": cov.write_excluded} for name, cov in report.items()}


def _pct(cov: ServiceCoverage) -> str:
    return f"{100 * cov.monitored / cov.documented:.0f}%" if cov.documented else "-"


def _summary(cov: ServiceCoverage, t: dict[str, str]) -> str:
    return t["summary"].format(documented=cov.documented, monitored=cov.monitored, pct=_pct(cov),
                               skipped=len(cov.skipped), write=cov.write_excluded, invalid=cov.invalid,
                               error_files=len(cov.error_files))


def _entry(s: Skipped) -> str:
    where = f"{s.method} {s.path}".strip()
    return f"{s.name} ({where})" if s.kind == "write" else f"{s.name} ({where}): {s.reason}"


def render_coverage(report: Mapping[str, ServiceCoverage], lang: str = "zh", *, markdown: bool = False) -> str:
    """The coverage section: plain text for the terminal, or Markdown for the report file (a table, then one
    `###` part per service). `report`: {service: ServiceCoverage}, in the order to print. Returns '\n' lines
    ending in '\n' (without services: the title and 'none', no final '\n'); at most MAX_LISTED entries per
    kind, the rest counted. No I/O; raises no error of its own."""
    t, labels = _TEXT.get(lang, _TEXT["zh"]), KIND_LABELS.get(lang, KIND_LABELS["zh"])
    lines: list[str] = [f"## {t['title']}", ""] if markdown else [t["title"]]
    if not report:
        return "\n".join([*lines, t["none"]])
    if markdown:
        head = [t["service"], t["documented"], t["monitored"], t["skipped"], t["write"], t["invalid"]]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for cov in report.values():
            lines.append(f"| {cov.service} | {cov.documented} | {cov.monitored} ({_pct(cov)}) | {len(cov.skipped)} | "
                         f"{cov.write_excluded} | {cov.invalid} |")
        lines.append("")
    for cov in report.values():
        if markdown:
            lines.append(f"### {cov.service}")
            lines.append(_summary(cov, t))
        else:
            lines.append(f"{cov.service}: {_summary(cov, t)}")
        indent, bullet = ("", "- ") if markdown else ("  ", "  - ")
        for kind, entries in cov.by_kind().items():
            lines.append(f"{indent}{'**' if markdown else ''}{labels.get(kind, kind)}{'**' if markdown else ''}"
                         f" ({len(entries)}):")
            lines += [f"{indent}{bullet}{_md(_entry(s), markdown)}" for s in entries[:MAX_LISTED]]
            if len(entries) > MAX_LISTED:
                lines.append(f"{indent}{bullet}{t['more'].format(n=len(entries) - MAX_LISTED)}")
        if cov.error_files:
            lines.append(f"{indent}{'**' if markdown else ''}{t['errors']}{'**' if markdown else ''}:")
            lines += [f"{indent}{bullet}{_md(f, markdown)}: {t['n_errors'].format(n=n)}"
                      for f, n in cov.error_files.items()]
        if markdown:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _md(text: str, markdown: bool) -> str:
    """Escape what Markdown would eat in names and reasons (`_` in operationIds, `|` in tables)."""
    if not markdown:
        return text
    return "".join("\\" + c if c in "\\`*_[]|<>" else c for c in text)
