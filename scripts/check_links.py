#!/usr/bin/python3
"""Checks that Outpost's documentation and source comments name files that exist.

Usage: check_links.py [REPO_ROOT]     (default: the folder above this script)

Exit status 0 when every reference resolves, 1 when some do not (one line per missing
target, "file:line: missing TARGET (as written)"), 2 on a usage error. Standard library
only; CTest runs it as `docs_links` (label docs), docs/DEVELOPING.md describes it.

What is checked, in the files git knows of (tracked, plus new files git does not ignore;
web/node_modules, build folders and testdata folders are skipped):

  1. Markdown (*.md): every relative link [text](path) and reference definition
     "[id]: path" must name an existing file or folder, resolved against the Markdown
     file's folder (a leading "/" means the repository root). http(s):, mailto: and
     #anchor links are not checked; a #fragment is dropped. Code spans and fenced code
     blocks are not links.
  2. Comments of source files (.cc .h .cmake CMakeLists.txt .sh .py .ts .js .mjs .proto):
     a) a token ending in .md,
     b) a token with a "/" whose first segment is a top-level folder of the repository
        (serve/handler.cc, docs/STYLE.md) or that starts with ./ or ../,
     c) a bare name.cc or name.h.
     A token resolves against the comment's folder, then the repository root (b's ./ and ../
     against the comment's folder only). Not references: URLs, placeholders (a token with
     < > * $ { } or |), files protoc generates (*.pb.h, *.pb.cc), and bare header names
     that the sources include with angle brackets (<sqlite3.h>: outside headers).
"""

import os
import re
import subprocess
import sys

SOURCE_SUFFIXES = (".cc", ".h", ".cmake", ".sh", ".py", ".ts", ".js", ".mjs", ".proto")
SOURCE_NAMES = ("CMakeLists.txt",)
HASH_COMMENT_SUFFIXES = (".cmake", ".sh", ".py")
SKIPPED_SEGMENTS = ("node_modules", "testdata")


def git_command(root, *args):
    # safe.directory: a checkout owned by another user (CI running as root) is still read.
    return ["git", "-c", "safe.directory=*", "-C", root, *args]


def list_files(root):
    """Repository-relative paths of the files to consider, sorted."""
    try:
        out = subprocess.run(
            git_command(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"),
            check=True, capture_output=True).stdout.decode("utf-8", "surrogateescape")
        paths = [p for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        # Not a git checkout (an unpacked tarball): every file under the root, less what the
        # top-level .gitignore names in its simple forms ("/folder/", "*.ext").
        paths = []
        prefixes, suffixes = fallback_ignores(root)
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d != ".git"]
            for name in files:
                rel = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
                if not rel.startswith(prefixes) and not rel.endswith(suffixes):
                    paths.append(rel)
    kept = []
    for path in paths:
        parts = path.split("/")
        if parts[0].startswith("build") or any(s in SKIPPED_SEGMENTS for s in parts):
            continue
        if os.path.isfile(os.path.join(root, path)):
            kept.append(path)
    return sorted(set(kept))


def fallback_ignores(root):
    prefixes, suffixes = [], []
    try:
        with open(os.path.join(root, ".gitignore"), encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line.startswith("/") and line.endswith("/") and "*" not in line:
                    prefixes.append(line[1:])
                elif line.startswith("*.") and "/" not in line:
                    suffixes.append(line[1:])
    except OSError:
        pass
    return tuple(prefixes), tuple(suffixes)


class Tree:
    """The repository's files and folders, as relative paths."""

    def __init__(self, root, files):
        self.root = root
        self.files = set(files)
        self.dirs = {""}
        for f in files:
            parts = f.split("/")
            for i in range(1, len(parts)):
                self.dirs.add("/".join(parts[:i]))
        self.top_level = {f.split("/")[0] for f in files if "/" in f}
        self._ignored = {}

    def exists(self, rel):
        """Whether `rel` (normalised, relative to the root) names a file or folder here."""
        if rel is None:
            return False
        rel = rel.rstrip("/")
        if rel in ("", "."):
            return True
        if rel in self.files or rel in self.dirs:
            return True
        # A file inside a skipped folder (testdata, node_modules) or ignored by git still
        # exists for a reader of the checkout.
        if os.path.exists(os.path.join(self.root, rel)):
            return True
        # What git ignores is made by a build (web/dist/, node_modules/): naming it is not a
        # link into the repository, whether or not this checkout has built it yet.
        return self.ignored(rel)

    def ignored(self, rel):
        if rel not in self._ignored:
            try:
                code = subprocess.run(git_command(self.root, "check-ignore", "--", rel,
                                                  rel + "/"), capture_output=True).returncode
            except OSError:
                code = 128
            if code in (0, 1):
                self._ignored[rel] = code == 0
            else:  # not a git checkout: the top-level .gitignore's simple forms
                prefixes, suffixes = fallback_ignores(self.root)
                self._ignored[rel] = (rel + "/").startswith(prefixes) or rel.endswith(suffixes)
        return self._ignored[rel]


def normalise(base_dir, target):
    """`target` joined to `base_dir`, normalised; None when it leaves the repository."""
    joined = os.path.normpath(os.path.join(base_dir, target)) if base_dir else \
        os.path.normpath(target)
    if joined == ".":
        return ""
    if joined == ".." or joined.startswith("../") or os.path.isabs(joined):
        return None
    return joined


# ---------------------------------------------------------------------------------------
# Markdown

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+.*)?$")
EXTERNAL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # http:, https:, mailto:, ftp:, ...


def check_markdown(tree, path, text, problems):
    base = os.path.dirname(path)
    in_fence = False
    for lineno, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        stripped = INLINE_CODE.sub("", line)
        targets = [m.group(1) for m in INLINE_LINK.finditer(stripped)]
        m = REFERENCE_DEF.match(stripped)
        if m:
            targets.append(m.group(1))
        for target in targets:
            if target.startswith("#") or EXTERNAL.match(target):
                continue
            clean = target.split("#", 1)[0].split("?", 1)[0]
            if not clean:
                continue
            if clean.startswith("/"):
                rel = normalise("", clean.lstrip("/"))
            else:
                rel = normalise(base, clean)
            if not tree.exists(rel):
                problems.append((path, lineno, target))


# ---------------------------------------------------------------------------------------
# Comments of source files


def c_like_comments(text, raw_strings):
    """(line, comment text) of every // and /* */ comment, outside string literals."""
    out = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append((line, text[i + 2:end]))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end
            for k, part in enumerate(text[i + 2:end].split("\n")):
                out.append((line + k, part))
            line += text.count("\n", i, end)
            i = end + 2
        elif raw_strings and c == "R" and i + 1 < n and text[i + 1] == '"' and \
                (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^()\\\s]{0,16})\(', text[i:])
            if not m:
                i += 1
                continue
            close = ")" + m.group(1) + '"'
            end = text.find(close, i + m.end())
            end = n if end < 0 else end + len(close)
            line += text.count("\n", i, end)
            i = end
        elif c == "'" and raw_strings and i > 0 and text[i - 1].isdigit():
            i += 1  # a C++14 digit separator (1'000'000), not a character literal
        elif c in "\"'`":
            quote = c
            j = i + 1
            while j < n and text[j] != quote:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "\n":
                    if quote != "`":
                        break  # an unterminated literal (or an apostrophe): stop at the line end
                    line += 1
                j += 1
            i = j + 1 if j < n and text[j] == quote else j
        else:
            i += 1
    return out


def hash_comments(text):
    """(line, comment text) of every # comment: a # at a line's start or after whitespace,
    outside quotes."""
    out = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        quote = None
        i = 0
        while i < len(raw):
            c = raw[i]
            if quote:
                if c == "\\":
                    i += 1  # the escaped character cannot close the literal
                elif c == quote:
                    quote = None
            elif c in "\"'":
                quote = c
            elif c == "#" and (i == 0 or raw[i - 1] in " \t"):
                out.append((lineno, raw[i + 1:]))
                break
            i += 1
    return out


LEADING_TRIM = "`'\"([{"
TRAILING_TRIM = "`'\")]},;:.!?"
LINE_SUFFIX = re.compile(r":\d+(?::\d+)?$")
BARE_SOURCE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*\.(cc|h)$")
ANGLE_INCLUDE = re.compile(r"#\s*include\s*<([^>]+)>")


def tokens(comment):
    for raw in comment.split():
        token = raw
        for _ in range(3):
            token = token.lstrip(LEADING_TRIM).rstrip(TRAILING_TRIM)
            for suffix in ("'s", "’s"):
                if token.endswith(suffix):
                    token = token[:-len(suffix)]
        token = LINE_SUFFIX.sub("", token).split("#", 1)[0].rstrip(TRAILING_TRIM)
        if token:
            yield token


def reference_in(token, tree, outside_headers):
    """The kind of reference `token` is ("md", "path", "bare"), or None."""
    if "://" in token or any(c in token for c in "<>*${}|=\\"):
        return None
    base = os.path.basename(token)
    if base.endswith((".pb.h", ".pb.cc")):
        return None
    if token.endswith(".md"):
        return "md"
    if "/" in token:
        # A path names a file (its last part has an extension) or a folder (it ends in "/");
        # "outbox/plain" in a sentence is a ratio, not a path.
        if "." not in base and not token.endswith("/"):
            return None
        if token.startswith(("./", "../")):
            return "path"
        first = token.split("/", 1)[0]
        if first in tree.top_level:
            return "path"
        return None
    if BARE_SOURCE.match(token) and token not in outside_headers:
        return "bare"
    return None


def resolve(token, kind, path, tree):
    here = os.path.dirname(path)
    if kind == "path" and token.startswith(("./", "../")):
        return tree.exists(normalise(here, token))
    return tree.exists(normalise(here, token)) or tree.exists(normalise("", token))


def check_source(tree, path, text, outside_headers, problems):
    name = os.path.basename(path)
    if name == "CMakeLists.txt" or path.endswith(HASH_COMMENT_SUFFIXES):
        comments = hash_comments(text)
    else:
        comments = c_like_comments(text, raw_strings=path.endswith((".cc", ".h")))
    for lineno, comment in comments:
        for token in tokens(comment):
            kind = reference_in(token, tree, outside_headers)
            if kind and not resolve(token, kind, path, tree):
                problems.append((path, lineno, token))


def is_source(path):
    return os.path.basename(path) in SOURCE_NAMES or path.endswith(SOURCE_SUFFIXES)


def read(root, path):
    with open(os.path.join(root, path), "rb") as f:
        return f.read().decode("utf-8", "replace")


def check(root):
    """Every (file, line, target) whose target is missing."""
    files = list_files(root)
    tree = Tree(root, files)
    sources = [f for f in files if is_source(f)]
    texts = {f: read(root, f) for f in sources}
    outside_headers = set()
    for text in texts.values():
        for m in ANGLE_INCLUDE.finditer(text):
            outside_headers.add(os.path.basename(m.group(1)))
    problems = []
    for path in files:
        if path.endswith(".md"):
            check_markdown(tree, path, read(root, path), problems)
    for path in sources:
        check_source(tree, path, texts[path], outside_headers, problems)
    return problems


def main(argv):
    if len(argv) > 2:
        print("usage: check_links.py [REPO_ROOT]", file=sys.stderr)
        return 2
    root = argv[1] if len(argv) == 2 else os.path.join(os.path.dirname(__file__), "..")
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        print(f"check_links: {root} is not a folder", file=sys.stderr)
        return 2
    problems = check(root)
    for path, lineno, target in problems:
        print(f"{path}:{lineno}: missing {target}")
    if problems:
        sys.stdout.flush()
        print(f"check_links: {len(problems)} reference(s) to missing files", file=sys.stderr)
        return 1
    print("check_links: every link and file reference resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
