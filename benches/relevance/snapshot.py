"""Shared helpers of the converters: read a snapshot (a bare git directory as `fetch`
brings it, or a checked-out work tree) and turn markdown, MDX, Svelte or TSX pages into
plain text. Standard library only."""

import html
import json
import os
import re
import subprocess

BODY_CHARS = 1500
SUMMARY_CHARS = 300


class Snapshot:
    """Files of one commit of a repository: `git --git-dir` for a bare repository,
    plain reads for a work tree."""

    def __init__(self, location, commit="HEAD"):
        self.location = location
        self.bare = os.path.isfile(os.path.join(location, "HEAD")) and os.path.isdir(
            os.path.join(location, "objects")
        )
        self.commit = commit
        if self.bare:
            self.commit = self._git("rev-parse", commit).strip()

    def _git(self, *args):
        return subprocess.run(
            ["git", "--git-dir", self.location, *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def files(self, prefix=""):
        if self.bare:
            out = self._git("ls-tree", "-r", "--name-only", self.commit, "--", prefix or ".")
            return sorted(line for line in out.splitlines() if line)
        root = os.path.join(self.location, prefix)
        found = []
        for base, _, names in os.walk(root):
            for name in names:
                found.append(os.path.relpath(os.path.join(base, name), self.location))
        return sorted(found)

    def read(self, path):
        if self.bare:
            return self._git("show", f"{self.commit}:{path}")
        with open(os.path.join(self.location, path), encoding="utf-8") as f:
            return f.read()


def front_matter(text):
    """(fields, rest): a YAML front matter's simple `key: value` fields (folded
    continuation lines joined; lists kept as raw text) and the text after it."""
    if not text.startswith("---"):
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        return {}, text
    fields, key = {}, None
    for line in text[3:end].splitlines():
        m = re.match(r"^([A-Za-z_][\w-]*):\s*(.*)$", line)
        if m:
            key = m.group(1)
            fields[key] = m.group(2).strip()
        elif key and line.startswith((" ", "\t")) and not line.strip().startswith("-"):
            fields[key] = (fields[key] + " " + line.strip()).strip()
    for k, v in fields.items():
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            fields[k] = v[1:-1]
    return fields, text[end + 4 :]


def markdown_text(text):
    """Readable text of a markdown / MDX / Svelte page body: no scripts, styles, imports,
    code blocks, HTML or JSX tags, images; links become their text."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
    text = re.sub(r"^```.*?^```", " ", text, flags=re.S | re.M)
    text = re.sub(r"^(import|export)\s.*$", " ", text, flags=re.M)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"<[^>]*>", " ", text)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"`(youtube|vimeo):[^`]*`", " ", text)
    text = re.sub(r"^\s{0,3}#{1,6}\s*", "", text, flags=re.M)
    text = re.sub(r"^\s*[-*+]\s+", "", text, flags=re.M)
    text = re.sub(r"^\s*>\s?", "", text, flags=re.M)
    text = re.sub(r"^\s*\|?[-:| ]+\|[-:| ]*$", " ", text, flags=re.M)
    text = text.replace("|", " ")
    text = re.sub(r"(\*\*|__|~~)", "", text)
    text = re.sub(r"(?<![\w*])[*_](?=\S)([^*_\n]+?)(?<=\S)[*_](?![\w*])", r"\1", text)
    text = text.replace("`", "")
    text = html.unescape(text)
    return text


def page_links(source, limit=100):
    """Link targets of a page as written (markdown `[text](target)`, `href="..."`,
    `to="..."`), in order, each once: no images, same-page anchors, mail or template
    placeholders. stagefit resolves them against the page's URL."""
    found = []
    pattern = r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)|\b(?:href|to)\s*=\s*[\"']([^\"']+)[\"']"
    for m in re.finditer(pattern, source):
        target = (m.group(1) or m.group(2)).strip()
        if (not target or target.startswith(("#", "mailto:", "tel:", "javascript:")) or "{" in target
                or target in found):
            continue
        found.append(target)
        if len(found) == limit:
            break
    return found


def squeeze(text):
    return re.sub(r"\s+", " ", text).strip()


def trim(text, limit):
    """At most `limit` characters, cut at a word boundary."""
    text = squeeze(text)
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.6 else cut).rstrip(" ,;:")


def paragraphs(text):
    return [squeeze(p) for p in re.split(r"\n\s*\n", text) if squeeze(p)]


def first_paragraph(text, title=""):
    for p in paragraphs(text):
        if p != title and len(p) > 40:
            return trim(p, SUMMARY_CHARS)
    return trim(text, SUMMARY_CHARS)


def jsx_text(source):
    """Text nodes of a TSX / Svelte page: what sits between tags, plus long string
    literals (titles, descriptions, list items held in constants)."""
    source = re.sub(r"<(script|style)\b.*?</\1>", " ", source, flags=re.S | re.I)
    source = re.sub(r"^\s*import\s.*$", " ", source, flags=re.M)
    nodes = []
    for m in re.finditer(r">([^<>{}]+)<", source):
        t = squeeze(html.unescape(m.group(1)))
        if re.search(r"[A-Za-z]{3}", t) and not re.match(r"^[\w.]+\s*=", t):
            nodes.append(t)
    return nodes


def string_literals(source, min_words=2):
    """Quoted strings of a TS/TSX file that read as prose (at least `min_words` words)."""
    out = []
    for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"|`([^`]*)`', source):
        s = m.group(1) if m.group(1) is not None else m.group(2)
        s = re.sub(r"\$\{[^}]*\}", " ", s)
        s = squeeze(re.sub(r"<[^>]*>", " ", s))
        if len(s.split()) >= min_words and not s.startswith(("/", "http", "@")) and "module.css" not in s:
            out.append(s)
    return out


def write_jsonl(path, assets):
    ids = set()
    with open(path, "w", encoding="utf-8") as f:
        for a in assets:
            assert re.fullmatch(r"[A-Za-z0-9._:/-]{1,128}", a["id"]), a["id"]
            assert a["id"] not in ids, a["id"]
            assert a["url"].startswith("/") and not a["url"].startswith("//"), a["url"]
            ids.add(a["id"])
            f.write(json.dumps(a, ensure_ascii=False) + "\n")
