#!/usr/bin/env python3
"""Converts the QuestDB website (questdb.io as of July 2021) into a stagefit library.

Reads github.com/questdb/questdb.io at commit ade83f59a839b734cad47a0a34f08b319d71f50b
(Apache-2.0 licence), from:
  blog/YYYY-MM-DD-<slug>.md         -> /blog/YYYY/MM/DD/<slug>       BLOG_POST (posts and release notes)
  tutorial/YYYY-MM-DD-<slug>.mdx    -> /tutorial/YYYY/MM/DD/<slug>   TRAINING
  docs/**/*.md (not docs/__guidelines, the writers' style guide)
                                    -> /docs/<path>                  IMPLEMENTATION_GUIDE
  docs/reference/**/*.md            -> /docs/reference/<path>        API_DOCS
  src/pages/case-study/*.tsx        -> /case-study/<name>            CASE_STUDY
  src/pages/customers.tsx           -> /customers                    CASE_STUDY
  src/pages/{enterprise.tsx,time-series-benchmark-suite.mdx}
                                    -> /<page>                       BLOG_POST (no rule matches)

The content type comes from the URL alone (first matching rule):
  /pricing -> PRICING_SHEET; /vs, /compare or "-vs-" in the path -> COMPARISON_GUIDE;
  /customers, /case-stud -> CASE_STUDY; /tutorial -> TRAINING; /docs/reference -> API_DOCS;
  /docs -> IMPLEMENTATION_GUIDE; /blog and anything else -> BLOG_POST.
Assets are untagged: no stages, roles, industries or concerns. The date of blog posts and
tutorials comes from their file name. Bodies are the first 1,500 characters of plain text;
`links` lists the link targets on the page as written (see snapshot.page_links).

Usage: convert.py SNAPSHOT [--commit SHA] [--output assets.jsonl]
  SNAPSHOT is the repository's git directory (bare, as `fetch` brings it) or a work tree.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from snapshot import (  # noqa: E402
    BODY_CHARS,
    Snapshot,
    first_paragraph,
    front_matter,
    jsx_text,
    markdown_text,
    page_links,
    squeeze,
    trim,
    write_jsonl,
)

COMMIT = "ade83f59a839b734cad47a0a34f08b319d71f50b"


def content_type(url):
    if url.startswith("/pricing"):
        return "PRICING_SHEET"
    if url.startswith(("/vs", "/compare")) or "-vs-" in url:
        return "COMPARISON_GUIDE"
    if url.startswith(("/customers", "/case-stud")):
        return "CASE_STUDY"
    if url.startswith("/tutorial"):
        return "TRAINING"
    if url.startswith("/docs/reference"):
        return "API_DOCS"
    if url.startswith("/docs"):
        return "IMPLEMENTATION_GUIDE"
    return "BLOG_POST"


def asset(id_, title, summary, text, url, published_at=None, links=()):
    a = {
        "id": id_,
        "title": squeeze(title),
        "summary": trim(summary, 300),
        "body": trim(text, BODY_CHARS),
        "url": url,
        "content_type": content_type(url),
        "language": "en",
    }
    if published_at:
        a["published_at"] = published_at
    if links:
        a["links"] = list(links)
    return a


def dated(snap, folder, ext):
    out = []
    for path in snap.files(folder):
        m = re.match(rf"{folder}/(\d{{4}})-(\d{{2}})-(\d{{2}})-(.+)\.{ext}$", path)
        if not m:
            continue
        y, mo, d, name = m.groups()
        fields, rest = front_matter(snap.read(path))
        text = markdown_text(rest)
        title = fields.get("title") or name
        summary = fields.get("description") or first_paragraph(text, title)
        out.append(asset(f"{folder}/{name}", title, summary, text, f"/{folder}/{y}/{mo}/{d}/{name}", f"{y}-{mo}-{d}", page_links(rest)))
    return out


def docs(snap):
    out = []
    for path in snap.files("docs"):
        if not path.endswith(".md") or path.startswith("docs/__"):
            continue
        rel = path[len("docs/") : -3]
        fields, rest = front_matter(snap.read(path))
        text = markdown_text(rest)
        title = fields.get("title") or fields.get("sidebar_label") or rel
        summary = fields.get("description") or first_paragraph(text, title)
        out.append(asset(f"docs/{rel}", title, summary, text, f"/docs/{rel}", links=page_links(rest)))
    return out


def tsx_page(snap, path, url):
    source = snap.read(path)
    title = re.search(r'const title\s*=\s*"([^"]+)"', source)
    desc = re.search(r'const description\s*=\s*"([^"]+)"', source, flags=re.S) or re.search(
        r'const description\s*=\s*\n\s*"([^"]+)"', source
    )
    nodes = []
    for n in jsx_text(source):
        if n not in nodes:
            nodes.append(n)
    text = ". ".join(n.rstrip(".") for n in nodes)
    name = url.strip("/").replace("/", "-")
    return asset(
        url.strip("/"),
        title.group(1) if title else name,
        desc.group(1) if desc else first_paragraph(text),
        text,
        url,
        links=page_links(source),
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("snapshot")
    p.add_argument("--commit", default=COMMIT)
    p.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets.jsonl"))
    args = p.parse_args()
    snap = Snapshot(args.snapshot, args.commit)
    assets = dated(snap, "blog", "md") + dated(snap, "tutorial", "mdx") + docs(snap)
    for path in snap.files("src/pages/case-study"):
        if path.endswith(".tsx"):
            name = os.path.basename(path)[:-4]
            assets.append(tsx_page(snap, path, f"/case-study/{name}"))
    assets.append(tsx_page(snap, "src/pages/customers.tsx", "/customers"))
    assets.append(tsx_page(snap, "src/pages/enterprise.tsx", "/enterprise"))
    fields, rest = front_matter(snap.read("src/pages/time-series-benchmark-suite.mdx"))
    text = markdown_text(rest)
    title = fields.get("title") or "Time Series Benchmark Suite"
    assets.append(asset("time-series-benchmark-suite", title, fields.get("description") or first_paragraph(text, title), text, "/time-series-benchmark-suite", links=page_links(rest)))
    write_jsonl(args.output, assets)
    counts = {}
    for a in assets:
        counts[a["content_type"]] = counts.get(a["content_type"], 0) + 1
    print(f"{len(assets)} assets -> {args.output}: {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
