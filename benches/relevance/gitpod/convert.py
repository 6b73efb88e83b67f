#!/usr/bin/env python3
"""Converts the Gitpod website (www.gitpod.io as of July 2021) into a stagefit library.

Reads github.com/gitpod-io/website at commit a430a92083735b98d31fea4cce71a6fcc6b980af
(MIT licence), from:
  src/routes/blog/*.md                      -> /blog/<slug>                 BLOG_POST
  src/contents/changelog/*.md               -> /changelog/<yyyy-mm>         BLOG_POST (release notes)
  src/routes/docs/**/*.md (without the
    versioned self-hosted/0.x.y copies;
    self-hosted/latest is kept)             -> /docs/<path>                 IMPLEMENTATION_GUIDE
  src/routes/docs/references/*.md           -> /docs/references/<page>      API_DOCS
  src/routes/docs/release-notes/**.md       -> /docs/release-notes/<...>    BLOG_POST (release notes)
  src/contents/screencasts.ts               -> /screencasts/<title>         VIDEO
  src/routes/pricing.svelte + contents/pricing.ts           -> /pricing     PRICING_SHEET
  src/routes/gitpod-vs-github-codespaces.svelte             -> /gitpod-vs-github-codespaces  COMPARISON_GUIDE
  src/routes/{features,self-hosted,enterprise-license}.svelte (+ their contents/*.ts)
                                                            -> /<page>      BLOG_POST (no rule matches)

The content type comes from the URL alone (first matching rule):
  /pricing -> PRICING_SHEET; /vs, /compare or "-vs-" in the path -> COMPARISON_GUIDE;
  /customers, /case-stud -> CASE_STUDY; /screencasts -> VIDEO; /docs/references -> API_DOCS;
  /docs/release-notes -> BLOG_POST; /docs -> IMPLEMENTATION_GUIDE; /blog, /changelog and
  anything else -> BLOG_POST.
Assets are untagged: no stages, roles, industries or concerns. Bodies are the first 1,500
characters of plain text; pages with less than 80 characters of text are left out. `links`
lists the link targets on the page as written (see snapshot.page_links).

Usage: convert.py SNAPSHOT [--commit SHA] [--output assets.jsonl]
  SNAPSHOT is the repository's git directory (bare, as `fetch` brings it) or a work tree.
"""

import argparse
import os
import re
import sys
from datetime import datetime

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
    string_literals,
    trim,
    write_jsonl,
)

COMMIT = "a430a92083735b98d31fea4cce71a6fcc6b980af"


def content_type(url):
    if url.startswith("/pricing"):
        return "PRICING_SHEET"
    if url.startswith(("/vs", "/compare")) or "-vs-" in url:
        return "COMPARISON_GUIDE"
    if url.startswith(("/customers", "/case-stud")):
        return "CASE_STUDY"
    if url.startswith("/screencasts"):
        return "VIDEO"
    if url.startswith("/docs/references"):
        return "API_DOCS"
    if url.startswith("/docs/release-notes"):
        return "BLOG_POST"
    if url.startswith("/docs"):
        return "IMPLEMENTATION_GUIDE"
    return "BLOG_POST"


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def blog_date(raw):
    """`Mon Mar 18 2019 16:16:17 GMT+0000`, `Friday, 16 Apr 2021 11:00:00 UTC` or `2021-06-30`."""
    raw = raw.strip()
    m = re.match(r"(\d{4}-\d{2}-\d{2})", raw)
    if m:
        return m.group(1)
    m = re.search(r"\b([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{4})\b", raw) or re.search(
        r"\b(\d{1,2})\s+([A-Z][a-z]{2})\s+(\d{4})\b", raw
    )
    if not m:
        return None
    a, b, year = m.groups()
    month, day = (a, b) if a.isalpha() else (b, a)
    return datetime.strptime(f"{day} {month} {year}", "%d %b %Y").date().isoformat()


def asset(id_, title, summary, text, url, published_at=None, links=()):
    a = {
        "id": id_,
        "title": squeeze(title),
        "summary": summary,
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


def markdown_pages(snap):
    out = []
    for path in snap.files("src/routes/blog"):
        if not path.endswith(".md"):
            continue
        fields, rest = front_matter(snap.read(path))
        name = os.path.basename(path)[:-3]
        text = markdown_text(rest)
        title = fields.get("title") or name
        summary = fields.get("excerpt") or fields.get("subtitle") or first_paragraph(text, title)
        out.append(asset(f"blog/{name}", title, trim(summary, 300), text, f"/blog/{name}", blog_date(fields.get("date", "")), page_links(rest)))
    for path in snap.files("src/contents/changelog"):
        if not path.endswith(".md"):
            continue
        fields, rest = front_matter(snap.read(path))
        month = os.path.basename(path)[:-3]
        text = markdown_text(rest)
        heads = [squeeze(h) for h in re.findall(r"^##\s+(.+)$", rest, flags=re.M) if "Fixes" not in h]
        title = f"Changelog {month}" + (f": {heads[0]}" if heads else "")
        out.append(asset(f"changelog/{month}", title, first_paragraph(text, title), text, f"/changelog/{month}", fields.get("date") or f"{month}-01", page_links(rest)))
    for path in snap.files("src/routes/docs"):
        if not path.endswith(".md"):
            continue
        rel = path[len("src/routes/docs/") : -3]
        if re.match(r"self-hosted/\d", rel):
            continue  # older versions of the self-hosted docs duplicate `latest`
        if rel.endswith("/index"):
            rel = rel[: -len("/index")]
        fields, rest = front_matter(snap.read(path))
        text = markdown_text(rest)
        heading = re.search(r"^#\s+(.+)$", rest, flags=re.M)
        title = fields.get("title") or (heading.group(1) if heading else rel)
        if len(squeeze(text)) < 80:
            continue
        date = None
        m = re.match(r"release-notes/(\d{4}-\d{2}-\d{2})", rel)
        if m:
            date = m.group(1)
        url = "/docs" if rel == "index" else f"/docs/{rel}"
        out.append(asset(f"docs/{rel}", title, first_paragraph(text, squeeze(title)), text, url, date, page_links(rest)))
    return out


def screencasts(snap):
    source = snap.read("src/contents/screencasts.ts")
    out = []
    for m in re.finditer(r'title:\s*"([^"]+)",\s*description:\s*"([^"]+)"', source):
        title, description = m.group(1), m.group(2)
        s = slug(title)
        block = source[m.end() : source.find("nextScreencast", m.end()) if "nextScreencast" in source[m.end():] else len(source)]
        related = re.findall(r'title:\s*"([^"]+)"', block)
        text = description + (" Related docs: " + ", ".join(related) + "." if related else "")
        out.append(asset(f"screencasts/{s}", title, description, text, f"/screencasts/{s}"))
    return out


def svelte_page(snap, page, contents, title):
    source = snap.read(f"src/routes/{page}.svelte")
    parts = jsx_text(source)
    for c in contents:
        parts += string_literals(snap.read(c), min_words=2)
    seen, text = set(), []
    for p in parts:
        if p not in seen:
            seen.add(p)
            text.append(p)
    body = ". ".join(t.rstrip(".") for t in text)
    desc = re.search(r'description\s*=\s*"([^"]+)"', source)
    summary = desc.group(1) if desc else trim(body, 300)
    links = page_links(source)
    for c in contents:
        links += [l for l in page_links(snap.read(c)) if l not in links]
    return asset(page, title, summary, body, f"/{page}", links=links[:100])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("snapshot")
    p.add_argument("--commit", default=COMMIT)
    p.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets.jsonl"))
    args = p.parse_args()
    snap = Snapshot(args.snapshot, args.commit)
    assets = markdown_pages(snap) + screencasts(snap)
    assets.append(svelte_page(snap, "pricing", ["src/contents/pricing.ts"], "Gitpod pricing"))
    assets.append(svelte_page(snap, "gitpod-vs-github-codespaces", [], "Gitpod vs GitHub Codespaces"))
    assets.append(svelte_page(snap, "features", ["src/contents/features.ts"], "Gitpod features"))
    assets.append(svelte_page(snap, "self-hosted", ["src/contents/self-hosted.ts"], "Gitpod Self-Hosted"))
    assets.append(svelte_page(snap, "enterprise-license", ["src/contents/license-key.ts"], "Gitpod Self-Hosted enterprise license"))
    write_jsonl(args.output, assets)
    counts = {}
    for a in assets:
        counts[a["content_type"]] = counts.get(a["content_type"], 0) + 1
    print(f"{len(assets)} assets -> {args.output}: {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
