"""YAML files -> documents with source positions, and the loader's defences.

Parsing uses libyaml's composer (C) and constructs Python values from its
nodes here, so that every value keeps its node and therefore its line and
column. Positions are looked up lazily, only for values a diagnostic needs.

A broken file becomes diagnostics, never an exception, and never hides the
results of the other files.
"""

from __future__ import annotations

import errno
import gc
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml

from reconciler.diagnostics import Diagnostic, format_path
from reconciler.validate.codes import severity

API_VERSION = "reconciler/v1"
KINDS = ("Provider", "Model", "PriceCatalog", "Overrides", "Settings")

MAX_FILE_BYTES = 16 * 1024 * 1024
ALIAS_BUDGET = 10_000  # nodes that aliases may add to a document, in all
ALIAS_TEXT_BUDGET = 1_000_000  # characters of text that aliases may add to a document, in all
ALIAS_TRACKED_CHARS = 16  # aliases of shorter strings are not counted (they cannot add much)
INT64 = (-(2**63), 2**63 - 1)  # the integers a store (and the gateway) can hold
MAX_INT_TEXT = 256  # longer integer literals are out of range, refused unread (int() of them is slow)
MAX_DEPTH = 64  # collection nesting the constructor accepts
TEXT_DEPTH_BOUND = 1_000  # nesting refused before libyaml sees it (it recurses in C)
BOM = b"\xef\xbb\xbf"

_T = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = _T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"
TIMESTAMP, MERGE, MAP, SEQ = _T + "timestamp", _T + "merge", _T + "map", _T + "seq"

_SCALARS = yaml.constructor.SafeConstructor()
_DEEP_INDENT = re.compile(rf"^[ \t\-?:]{{{TEXT_DEPTH_BOUND},}}", re.MULTILINE)
_FLOW = re.compile(r"[\[\]{}]")
_BREAKS = "\r\n\x85\u2028\u2029"  # what libyaml counts as line breaks (and CR LF as one)
_BREAK = re.compile(f"\r\n|[{_BREAKS}]")
# what no manifest string may hold: C0 and C1 controls except tab, LF and CR (NUL, terminal
# escapes), and the bidirectional overrides and isolates that reorder text on screen
UNSAFE_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

Path = tuple[str | int, ...]


class _Loader(yaml.CSafeLoader):  # type: ignore[misc]
    """libyaml's composer with a memo on implicit tag resolution.

    The tag of a plain scalar depends on its text alone, and manifests repeat
    the same texts (true, 70, provider names) thousands of times; resolving
    each through the resolver's regular expressions costs ~40% of a load.
    """

    _plain_tags: dict[str, str] = {}

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            tag = self._plain_tags.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._plain_tags) < 200_000:
                    self._plain_tags[value] = tag
            return tag
        return str(super().resolve(kind, value, implicit))


class ExactFloat(float):
    """A YAML number that a binary float cannot hold exactly, with the text it was written as,
    so that a price reads as the decimal the author wrote (prices.to_decimal uses `text`)."""

    __slots__ = ("text",)

    def __new__(cls, value: float, text: str) -> ExactFloat:
        number = super().__new__(cls, value)
        number.text = text
        return number

    def __reduce__(self) -> tuple[Any, ...]:
        return (ExactFloat, (float(self), self.text))


class Source:
    """The text of one file, shared by its documents, so that their node trees need not outlive
    loading: `node(index)` composes the text again for the rare diagnostic that needs a position.
    The last file composed is kept (diagnostics come sorted by file)."""

    __slots__ = ("text", "_nodes")
    _recent: Source | None = None

    def __init__(self, text: str) -> None:
        self.text = text
        self._nodes: list[yaml.Node | None] | None = None

    def node(self, index: int) -> yaml.Node:
        if self._nodes is None:
            loader = _Loader(self.text)
            nodes: list[yaml.Node | None] = []
            try:
                while loader.check_node():  # as far as loading got: a later syntax error ends it
                    nodes.append(loader.get_node())
            except yaml.YAMLError:
                pass
            finally:
                loader.dispose()
            previous, Source._recent = Source._recent, self
            if previous is not None and previous is not self:
                previous._nodes = None
            self._nodes = nodes
        found = self._nodes[index] if index < len(self._nodes) else None
        if found is None:
            raise LookupError(f"document {index} is no longer in the text it was loaded from")
        return found


@dataclass
class Document:
    """One YAML document of one file: its data, and where its node tree can be had again."""

    file: str
    index: int
    node: yaml.Node | None  # None once loading is done: `tree()` composes it again from `source`
    data: Any
    unsafe_text: bool = False  # some string holds a character UNSAFE_CHAR matches
    source: Source | None = None
    line: int = 0  # where a plan addresses the object: metadata.name's line (else the document's)

    def tree(self) -> yaml.Node:
        if self.node is not None:
            return self.node
        if self.source is None:
            raise LookupError(f"{self.file}: document {self.index} kept no source to locate values in")
        return self.source.node(self.index)

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "")) if isinstance(self.data, dict) else ""

    @property
    def name(self) -> str:
        meta = self.data.get("metadata") if isinstance(self.data, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        return name if isinstance(name, str) else ""

    def origin(self, path: Path) -> Document:
        """The document whose file holds the value at `path`: this one (a merged one overrides it)."""
        return self

    def locate(self, path: Path, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at `path`, or of its key when `key`.

        A path that leads nowhere (a missing field) points at the deepest
        mapping or sequence on the way, which is where the field belongs.
        """
        node = self.tree()
        key_node: yaml.Node | None = None
        for part in path:
            child = _child(node, part)
            if child is None:
                break
            key_node, node = child
        target = key_node if key and key_node is not None else node
        mark = target.start_mark
        return mark.line + 1, mark.column + 1

    def diagnostic(self, code: str, message: str, path: Path = (), key: bool = False) -> Diagnostic:
        line, column = self.locate(path, key)
        return Diagnostic(self.file, line, column, severity(code), code, message, format_path(path))


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for knode, vnode in node.value:
            if knode.value == part:
                return knode, vnode
        for knode, vnode in node.value:  # a key brought in by a merge (`<<: *anchor`)
            if knode.tag == MERGE:
                for source in vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]:
                    found = _child(source, part)
                    if found is not None:
                        return found
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return None, node.value[part]
    return None


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


PROJECT_FILE = "reconciler.yaml"  # a project file, never a manifest (reconciler/project.py)


def glob_pattern(glob: str) -> re.Pattern[str]:
    """A `/`-separated glob as a regular expression: `**` any depth, `*` and `?` within one name.
    A glob without `/` matches a name at any depth (as in .gitignore)."""
    glob = glob.strip().rstrip("/")
    if glob.startswith("./"):
        glob = glob[2:]
    out = "" if "/" in glob else "(?:.*/)?"
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out + "(?:/.*)?")  # a directory's match takes everything under it


def _excluded(path: str, roots: Sequence[str], patterns: Sequence[re.Pattern[str]]) -> bool:
    for root in roots:
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        if not rel.startswith("../") and any(p.fullmatch(rel) for p in patterns):
            return True
    return False


def discover(paths: Sequence[str], exclude: Sequence[str] = (), exclude_root: str = ".") -> tuple[
        list[str], list[Diagnostic]]:
    """The manifest files under `paths`: directories recursively, hidden ones, project files
    and directories of another project skipped, and those an `exclude` glob matches (relative
    to the directory given, or to `exclude_root`), sorted."""
    files: list[str] = []
    problems: list[Diagnostic] = []
    patterns = [glob_pattern(g) for g in exclude if g.strip()]
    for given in paths:
        if os.path.isdir(given):
            found: list[str] = []
            seen = {os.path.realpath(given)}  # directories entered: a symlink loop is entered once
            for root, dirs, names in os.walk(given, followlinks=True):  # a linked folder is read, not skipped
                kept = []
                for d in dirs:
                    real = os.path.realpath(os.path.join(root, d))
                    if d.startswith(".") or real in seen or os.path.isfile(os.path.join(root, d, PROJECT_FILE)):
                        continue  # hidden, seen, or another project's (validated with its own project file)
                    seen.add(real)
                    kept.append(d)
                dirs[:] = kept
                found += [
                    os.path.join(root, n)
                    for n in names
                    if n.endswith((".yaml", ".yml")) and not n.startswith(".") and n != PROJECT_FILE
                ]
            if patterns:
                found = [f for f in found if not _excluded(f, (given, exclude_root), patterns)]
            files += sorted(found)
        elif os.path.exists(given) or given == "-":  # a FIFO or a device is refused when read, not hung on
            files.append(given)
        else:
            problems.append(_path_diag(given, "RC101", "no such file or directory"))
    if not files and not problems:
        where = ", ".join(paths) or "."
        problems.append(_path_diag(where, "RC115", f"no .yaml or .yml files under {where}"))
    return files, problems


def load_paths(paths: Sequence[str]) -> LoadResult:
    """Load every manifest file under `paths`; problems become diagnostics."""
    files, problems = discover(paths)
    result = LoadResult(diagnostics=problems, files=files)
    with paused_gc():
        for path in files:
            documents, diagnostics = load_file(path)
            result.documents += documents
            result.diagnostics += diagnostics
    return result


@contextmanager
def paused_gc() -> Iterator[None]:
    """The collector makes building large trees ~2.5x slower, and what loading builds lives until
    exit: pause it, then keep what was built out of later collections."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.freeze()
            gc.enable()


def load_file(path: str) -> tuple[list[Document], list[Diagnostic]]:
    raw, problems = read_file(path)
    return load_bytes(raw, path) if raw is not None else ([], problems)


def read_file(path: str) -> tuple[bytes | None, list[Diagnostic]]:
    """The bytes of a manifest file (`-`: standard input), or why it cannot be read."""
    try:
        if path == "-":
            import sys

            raw = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            from reconciler.files import read_regular

            raw = read_regular(path, MAX_FILE_BYTES)  # exactly its size: no 16 MiB buffer per file
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            return None, [_file_diag(path, "RC102", f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")]
        return None, [_path_diag(path, "RC101", f"cannot read: {exc.strerror or exc}")]
    return raw, []


def load_bytes(raw: bytes, path: str) -> tuple[list[Document], list[Diagnostic]]:
    """Parse the bytes of one file; `path` is how diagnostics name it."""
    problems: list[Diagnostic] = []
    if len(raw) > MAX_FILE_BYTES:
        return [], [_file_diag(path, "RC102", f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")]
    if raw.startswith(BOM):
        raw = raw[len(BOM) :]
        problems.append(_file_diag(path, "RC104", "starts with a UTF-8 byte-order mark; save without it"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _offset_position(raw, exc.start)
        message = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        return [], [*problems, _diag(path, line, column, "RC103", message)]
    if not text.strip():
        return [], [*problems, _file_diag(path, "RC114", "the file holds no documents")]
    too_deep = _text_too_deep(text)
    if too_deep is not None:
        message = f"nesting deeper than {TEXT_DEPTH_BOUND} levels is refused"
        return [], [*problems, _diag(path, too_deep[0], too_deep[1], "RC109", message)]

    documents: list[Document] = []
    loader = _Loader(text)
    scan_all = UNSAFE_CHAR.search(text) is not None  # else only escapes can make unsafe text
    source = Source(text)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                documents.extend(_document(path, index, node, problems, scan_all, source))
            index += 1
    except yaml.MarkedYAMLError as exc:
        problems.append(_syntax_diag(path, exc, text))
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow; no mark
        problems.append(_reader_diag(path, exc, raw))
    except yaml.YAMLError as exc:
        problems.append(_file_diag(path, "RC105", f"YAML syntax error: {exc}"))
    finally:
        loader.dispose()
    if not documents and not problems:
        problems.append(_file_diag(path, "RC114", "the file holds no documents"))
    return documents, problems


def load_document(path: str) -> tuple[Document | None, list[Diagnostic]]:
    """A file of one document of any kind (the project file), with positions; problems as diagnostics."""
    from reconciler.files import read_regular

    try:
        text = read_regular(path, MAX_FILE_BYTES).decode("utf-8")
    except OSError as exc:
        return None, [_file_diag(path, "RC101", f"cannot read: {exc.strerror or exc}")]
    except UnicodeDecodeError:
        return None, [_file_diag(path, "RC103", "not valid UTF-8; save the file as UTF-8")]
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_diag(path, exc, text)]
    except yaml.YAMLError as exc:
        return None, [_file_diag(path, "RC105", f"YAML syntax error: {exc}")]
    finally:
        loader.dispose()
    if node is None:
        return None, []
    builder = _Builder(path, True)
    try:
        data = builder.build(node)
    except _Abort:
        return None, builder.problems
    if builder.problems:
        return None, builder.problems
    return Document(path, 0, node, data, builder.unsafe_text, Source(text)), []


def _name_line(node: yaml.Node) -> int:
    """The line of metadata.name (1-based), or of the document; read before the node tree is freed."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "metadata" and isinstance(value, yaml.MappingNode):
                for k, v in value.value:
                    if k.value == "name":
                        return int(v.start_mark.line) + 1
    return int(node.start_mark.line) + 1


def _document(
    path: str, index: int, node: yaml.Node, problems: list[Diagnostic], scan_all: bool, source: Source
) -> list[Document]:
    if isinstance(node, yaml.ScalarNode) and node.tag == NULL:
        return []  # an empty document between two `---` separators
    builder = _Builder(path, scan_all)
    try:
        data = builder.build(node)
    except _Abort:
        problems.extend(builder.problems)
        return []
    problems.extend(builder.problems)
    if builder.problems:
        return []
    doc = Document(path, index, node, data, builder.unsafe_text, source, _name_line(node))
    if not isinstance(data, dict):
        problems.append(doc.diagnostic("RC111", "a manifest document must be a mapping"))
        return []
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if api_version != API_VERSION:
        shown = quoted(api_version) if isinstance(api_version, str) else "missing"
        message = f"apiVersion is {shown}; expected {API_VERSION!r}"
        problems.append(doc.diagnostic("RC112", message, ("apiVersion",)))
        return []
    if kind not in KINDS:
        shown = quoted(kind) if isinstance(kind, str) else "missing"
        message = f"kind is {shown}; expected one of {', '.join(KINDS)}"
        problems.append(doc.diagnostic("RC113", message, ("kind",)))
        return []
    doc.node = None  # positions come from `source` when a diagnostic needs one: the tree is freed
    return [doc]


class _Abort(Exception):
    """The document cannot be built further (alias bomb, runaway nesting)."""


class _Builder:
    """Constructs plain Python values from a node tree, checking as it goes."""

    def __init__(self, path: str, scan_all: bool) -> None:
        self.path = path
        self.scan_all = scan_all  # check every string for unsafe characters, not only escaped ones
        self.problems: list[Diagnostic] = []
        self.done: dict[int, Any] = {}  # id(collection node) -> its value, shared by its aliases
        self.sizes: dict[int, tuple[int, int]] = {}  # id(node) -> logical (nodes, characters)
        self.long_scalars: set[int] = set()  # long scalars met so far: meeting one again is an alias
        self.active: set[int] = set()
        self.expanded_nodes = 0
        self.expanded_chars = 0
        self.unsafe_text = False  # a string holds a character UNSAFE_CHAR matches

    def build(self, node: yaml.Node) -> Any:
        return self._node(node, 0)

    def _problem(self, node: yaml.Node, code: str, message: str) -> None:
        mark = node.start_mark
        self.problems.append(_diag(self.path, mark.line + 1, mark.column + 1, code, message))

    def _node(self, node: yaml.Node, depth: int) -> Any:
        """The value of `node`; an alias shares it, and counts its logical size against the budgets."""
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        ident = id(node)
        if ident in self.done:
            self._expand(node, *self._size(node))
            return self.done[ident]
        if ident in self.active:
            self._problem(node, "RC108", "an alias refers to its own anchor (recursive structure)")
            raise _Abort
        if depth >= MAX_DEPTH:
            self._problem(node, "RC109", f"collections nested deeper than {MAX_DEPTH} levels")
            raise _Abort
        self._tag(node, MAP if isinstance(node, yaml.MappingNode) else SEQ)
        self.active.add(ident)
        if isinstance(node, yaml.MappingNode):
            built: Any = self._mapping(node, depth)
        else:
            built = [self._node(child, depth + 1) for child in node.value]
        self.active.discard(ident)
        self.done[ident] = built
        return built

    def _long_scalar(self, node: yaml.ScalarNode) -> None:
        """An alias of a string shares it, but whatever serialises it writes it again."""
        ident = id(node)
        if ident in self.long_scalars:
            self._expand(node, 1, len(node.value))
        self.long_scalars.add(ident)

    def _size(self, node: yaml.Node) -> tuple[int, int]:
        """Logical (nodes, characters) of a built node, each alias inside counted again; memoised."""
        if isinstance(node, yaml.ScalarNode):
            return 1, len(node.value)
        known = self.sizes.get(id(node))
        if known is None:
            nodes, chars = 1, 0
            pairs = node.value if isinstance(node, yaml.MappingNode) else [(None, v) for v in node.value]
            for knode, vnode in pairs:
                if isinstance(knode, yaml.ScalarNode):
                    chars += len(knode.value)
                n, c = self._size(vnode)
                nodes, chars = nodes + n, chars + c
            known = self.sizes[id(node)] = (nodes, chars)
        return known

    def _expand(self, node: yaml.Node, nodes: int, chars: int) -> None:
        self.expanded_nodes += nodes
        self.expanded_chars += chars
        if self.expanded_nodes > ALIAS_BUDGET:
            self._problem(node, "RC108", f"aliases expand to more than {ALIAS_BUDGET} nodes")
            raise _Abort
        if self.expanded_chars > ALIAS_TEXT_BUDGET:
            message = f"aliases expand to more than {ALIAS_TEXT_BUDGET} characters of text"
            self._problem(node, "RC108", message)
            raise _Abort

    def _mapping(self, node: yaml.MappingNode, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: list[dict[str, Any]] = []
        for knode, vnode in node.value:
            if knode.tag == MERGE:
                value = self._node(vnode, depth + 1)
                sources = value if isinstance(value, list) else [value]
                if not all(isinstance(s, dict) for s in sources):
                    self._problem(knode, "RC105", "a merge key (<<) must name a mapping")
                    continue
                merged.extend(sources)
                continue
            key = self._scalar(knode) if isinstance(knode, yaml.ScalarNode) else None
            if not isinstance(key, str):
                shown = "a collection" if key is None else quoted(knode.value)
                self._problem(knode, "RC116", f"mapping key {shown} is not a string; quote it")
                continue
            if key in result:
                first = next(k for k, _ in node.value if k.value == key)
                line = first.start_mark.line + 1
                self._problem(knode, "RC107", f"duplicate key {quoted(key)} (first defined at line {line})")
                continue
            result[key] = self._node(vnode, depth + 1)
        for source in merged:  # explicit keys win over merged ones, earlier merges over later
            for key, value in source.items():
                result.setdefault(key, value)
        return result

    def _tag(self, node: yaml.Node, expected: str) -> None:
        if node.tag != expected:
            self._problem(node, "RC110", f"unsupported YAML tag {quoted(node.tag)}")
            raise _Abort

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag in (STR, TIMESTAMP):
            value = node.value
            if len(value) >= ALIAS_TRACKED_CHARS:
                self._long_scalar(node)
            if (node.style == '"' or self.scan_all) and UNSAFE_CHAR.search(value):
                self.unsafe_text = True  # the schema pass says where
            return value
        if tag == INT:
            try:
                number = _SCALARS.construct_yaml_int(node) if len(node.value) <= MAX_INT_TEXT else None
            except (ValueError, KeyError, IndexError):  # an explicit !!int on what is not one
                return self._unreadable(node, "int")
            if number is None or not INT64[0] <= number <= INT64[1]:
                message = "integer is outside the 64-bit range a store can hold (-2**63 to 2**63-1)"
                self._problem(node, "RC203", message)
            return number
        if tag == FLOAT:
            number = self._construct(node, _SCALARS.construct_yaml_float, "float")
            if isinstance(number, float) and not math.isfinite(number):
                self._problem(node, "RC203", f"{quoted(node.value)} is not a finite number")
                return number
            if isinstance(number, float) and repr(number) != node.value:
                return ExactFloat(number, node.value)  # 123456789012.345678 is not a float's value
            return number
        if tag == BOOL:
            return self._construct(node, _SCALARS.construct_yaml_bool, "bool")
        if tag == NULL:
            return None
        self._problem(node, "RC110", f"unsupported YAML tag {quoted(tag)}")
        return node.value

    def _construct(self, node: yaml.ScalarNode, construct: Callable[[yaml.ScalarNode], Any], kind: str) -> Any:
        try:
            return construct(node)
        except (ValueError, KeyError, IndexError):  # an explicit !!float or !!bool on what is not one
            return self._unreadable(node, kind)

    def _unreadable(self, node: yaml.ScalarNode, kind: str) -> Any:
        """The value is not repeated in the message: it may be a secret."""
        message = f"YAML syntax error: the value cannot be read as a YAML {kind}; quote it if it is text"
        self._problem(node, "RC105", message)
        return node.value


def _syntax_diag(path: str, exc: yaml.MarkedYAMLError, text: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    if mark is not None and _past_the_end(text, mark):  # an unclosed quote or bracket
        start = exc.context_mark
        if start is not None and (start.line, start.column) != (mark.line, mark.column):
            line, column = start.line + 1, start.column + 1  # where the unclosed scalar began
        else:
            line, column = mark.line, len(_BREAK.split(text)[-2]) + 1  # the end of the last line
    problem = exc.problem or "invalid YAML"
    if "tab" in problem or (problem.startswith("found character") and _char_at(text, line, column) == "\t"):
        return _diag(path, line, column, "RC106", "tab character used for indentation; use spaces")
    context = f" {exc.context}" if exc.context else ""
    return _diag(path, line, column, "RC105", f"YAML syntax error: {problem}{context}")


def _past_the_end(text: str, mark: yaml.Mark) -> bool:
    """Whether `mark` is on the empty line after the file's final line break (no editor shows it)."""
    return mark.column == 0 and mark.line > 0 and mark.line == len(_BREAK.findall(text)) and text[-1:] in _BREAKS


def _reader_diag(path: str, exc: yaml.reader.ReaderError, raw: bytes) -> Diagnostic:
    """libyaml refuses a character (NUL, a control, U+FFFE) at a byte offset of the UTF-8 text."""
    offset = min(max(exc.position, 0), len(raw))
    line_start = raw.rfind(b"\n", 0, offset) + 1
    line = raw.count(b"\n", 0, offset) + 1
    column = len(raw[line_start:offset].decode("utf-8", "replace")) + 1
    shown = f"U+{exc.character:04X}" if isinstance(exc.character, int) else "a character"
    message = f"YAML syntax error: {shown} is not allowed in YAML ({exc.reason}); remove it"
    return _diag(path, line, column, "RC105", message)


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.split("\n", line)
    return lines[line - 1][column - 1 : column] if len(lines) >= line else ""


def _text_too_deep(text: str) -> tuple[int, int] | None:
    """A cheap upper bound on nesting, so that libyaml never recurses too far."""
    deep = _DEEP_INDENT.search(text)
    if deep is not None:
        return _text_position(text, deep.start())
    if text.count("[") + text.count("{") < TEXT_DEPTH_BOUND:
        return None
    depth = 0
    for match in _FLOW.finditer(text):
        depth += 1 if match.group() in "[{" else -1
        if depth >= TEXT_DEPTH_BOUND:
            return _text_position(text, match.start())
    return None


def _text_position(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _offset_position(raw: bytes, offset: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, offset - line_start + 1


def quoted(text: str, limit: int = 64) -> str:
    """`text` as a message shows it: repr'd, and cut short (a key or a value can be megabytes)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def _diag(path: str, line: int, column: int, code: str, message: str) -> Diagnostic:
    return Diagnostic(path, line, column, severity(code), code, message)


def _file_diag(path: str, code: str, message: str) -> Diagnostic:
    return _diag(path, 1, 1, code, message)


def _path_diag(path: str, code: str, message: str) -> Diagnostic:
    """A problem with the path itself: no line or column to point at (both 0)."""
    return _diag(path, 0, 0, code, message)


def documents_of_kind(documents: Iterable[Document], kind: str) -> list[Document]:
    return [d for d in documents if d.kind == kind]
