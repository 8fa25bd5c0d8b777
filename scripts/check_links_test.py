#!/usr/bin/python3
"""Self-test of scripts/check_links.py: a small repository in a temporary folder, first with
only good references (the checker must pass), then with one bad reference of each kind
added at a time (the checker must fail and name the file, the line and the target).

Usage: check_links_test.py     (CTest runs it as `docs_links_selftest`, label docs)
Standard library only; needs git, as the checker does.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_links.py")

# A repository whose every reference resolves, including the things that look like
# references but are not (placeholders, URLs, string literals, outside headers, build
# output that git ignores, a ratio written with a slash).
GOOD_TREE = {
    ".gitignore": "/web/dist/\n",
    "README.md": "# Tool\n\nSee [the design](docs/ARCHITECTURE.md#layers), [docs](docs/),\n"
                 "[the web](https://example.org/x.md), [mail](mailto:a@b.c), [top](#tool).\n"
                 "In code, `[not a link](nowhere.md)` is text.\n\n"
                 "```\n[also not a link](missing.md)\n```\n",
    "docs/ARCHITECTURE.md": "# Architecture\n\nFormats: [serve](../serve/FORMAT.md), "
                            "[root-relative](/serve/handler.h).\n\n[ref]: ../README.md\n",
    "serve/FORMAT.md": "# serve formats\n",
    "serve/handler.h": "// The handler (FORMAT.md, docs/ARCHITECTURE.md); see handler.cc and\n"
                       "// serve/handler.cc. Models live in <repo>/<model>/config.yaml and\n"
                       "// 1/model.onnx; kernels_*.cc; only handler.cc includes sqlite3.h.\n"
                       "#include <sqlite3.h>\n",
    "serve/handler.cc": "#include \"serve/handler.h\"\n"
                        "const char* kUrl = \"http://x/y // not a comment missing.h\";\n"
                        "/* Block comment naming ../docs/ARCHITECTURE.md and the ratio\n"
                        "   outbox/plain, and util.h (found at the root). */\n"
                        "const char* kRaw = R\"(// raw.h is in a string)\";\n",
    "util.h": "// util.h: at the root.\n",
    "CMakeLists.txt": "# One library per subsystem (docs/ARCHITECTURE.md); web/dist/ is built.\n"
                      "set(x \"# not a comment: missing.md\")\n",
    "scripts/run.sh": "#!/bin/sh\n# Runs serve/handler.cc's tests (see ../README.md).\n"
                      "echo $# \"#x.md\" \"a\\\" # still a string: missing.md\"\n",
    "web/src/main.ts": "// The dashboard; built into web/dist/index.html.\nconst s = '//x.md';\n",
}

# One bad reference each: (file, content appended, the line it lands on, the target named).
BAD_CASES = [
    ("docs/ARCHITECTURE.md", "\nSee [style](STYLE.md).\n", 7, "STYLE.md"),
    ("docs/ARCHITECTURE.md", "\nSee [gone](../serve/GONE.md#part).\n", 7, "../serve/GONE.md#part"),
    ("docs/ARCHITECTURE.md", "\n[def]: ../nowhere/file.txt\n", 7, "../nowhere/file.txt"),
    ("README.md", "\nOutside: [design](../shared/DESIGN.md).\n", 11, "../shared/DESIGN.md"),
    ("serve/handler.h", "// Registered in registry.cc.\n", 5, "registry.cc"),
    ("serve/handler.h", "// The layout follows DESIGN.md.\n", 5, "DESIGN.md"),
    ("serve/handler.cc", "// See serve/missing_file.cc.\n", 6, "serve/missing_file.cc"),
    ("serve/handler.cc", "// See ../../shared/reference/notes.md section 6.\n", 6,
     "../../shared/reference/notes.md"),
    ("CMakeLists.txt", "# dependencies (docs/LAYERING.md)\n", 3, "docs/LAYERING.md"),
    ("scripts/run.sh", "# see ./helper.py\n", 4, "./helper.py"),
    ("web/src/main.ts", "/* reads docs/API.md */\n", 3, "docs/API.md"),
]


def write_tree(root, tree):
    for path, text in tree.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)


def git(root, *args):
    subprocess.run(["git", "-C", root, *args], check=True, capture_output=True)


class CheckLinksTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="check_links_test.")
        write_tree(self.root, GOOD_TREE)
        git(self.root, "init", "-q")
        git(self.root, "add", "-A")

    def tearDown(self):
        shutil.rmtree(self.root)

    def run_checker(self):
        return subprocess.run([sys.executable, CHECKER, self.root], capture_output=True,
                              text=True)

    def test_good_tree_passes(self):
        r = self.run_checker()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_untracked_files_count_and_testdata_is_skipped(self):
        # A new file git does not ignore is part of the tree; testdata is never read.
        write_tree(self.root, {"serve/new.h": "// new.h, beside handler.cc\n",
                               "serve/testdata/notes.md": "[x](missing.md)\n"})
        r = self.run_checker()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_each_bad_reference_fails_with_file_line_and_target(self):
        for path, extra, line, target in BAD_CASES:
            with self.subTest(path=path, target=target):
                full = os.path.join(self.root, path)
                with open(full, encoding="utf-8") as f:
                    good = f.read()
                with open(full, "a", encoding="utf-8") as f:
                    f.write(extra)
                try:
                    r = self.run_checker()
                finally:
                    with open(full, "w", encoding="utf-8") as f:
                        f.write(good)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn(f"{path}:{line}: missing {target}", r.stdout)
                self.assertEqual(len(r.stdout.strip().splitlines()), 1, r.stdout)

    def test_outside_a_git_checkout_every_file_is_read(self):
        # An unpacked tarball: no .git, the same verdicts.
        shutil.rmtree(os.path.join(self.root, ".git"))
        r = self.run_checker()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(self.root, "serve/handler.h"), "a", encoding="utf-8") as f:
            f.write("// Registered in registry.cc.\n")
        r = self.run_checker()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("serve/handler.h:5: missing registry.cc", r.stdout)

    def test_a_deleted_file_is_missing_even_while_git_still_tracks_it(self):
        os.remove(os.path.join(self.root, "util.h"))
        r = self.run_checker()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("serve/handler.cc:4: missing util.h", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
