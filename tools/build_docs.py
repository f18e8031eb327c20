#!/usr/bin/env python
"""Build cmg_nb's documentation site offline: `python tools/build_docs.py` -> `_docs/index.html`.

`nbdev_docs` needs Quarto, which cannot be installed on every machine (see the README). This build
needs only packages from PyPI (the `dev` extras) and no network:

1. nbdev's own processors (`nbdev.serve.proc_nbs`, what `nbdev_proc_nbs` runs, without its attempt to
   download Quarto) write `_proc/`: `show_doc` cells re-run, hidden and exported cells dropped, the
   title and description moved to front matter.
2. Each processed notebook becomes a Markdown page in `_proc/_mkdocs/docs/`: its prose and maths,
   its code, and its committed outputs (plots as PNG files, tables, printed text). Notebooks are not
   executed: they are committed with their outputs.
3. MkDocs + Material build `_docs/`: one page per notebook, in the notebooks' order, with a sidebar,
   a search box and MathJax served from the site itself (no CDN); the site also works from disk.

`_quarto.yml` and `nbdev_docs` are untouched and keep working for users who have Quarto.
"""
from __future__ import annotations
import argparse, ast, base64, configparser, hashlib, html, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = ROOT/'tools'/'docs'
MKDOCS_DIR = ROOT/'_proc'/'_mkdocs'   # generated; `_`-prefixed so Quarto and nbdev ignore it

# ---------------------------------------------------------------------------------------------------
# Settings and the notebooks to publish

def read_settings(root:Path=ROOT)->dict:
    "The `[DEFAULT]` section of nbdev's settings.ini as a dict."
    cp = configparser.ConfigParser(delimiters=['='])
    cp.read(root/'settings.ini', encoding='utf-8')
    return dict(cp['DEFAULT'])

def _skipped(rel:Path)->bool: return any(p.startswith(('_', '.')) for p in rel.parts)

def source_notebooks(nbs:Path)->list[Path]:
    "Notebooks in `nbs` (sub-folders too) in the docs' order: by path, `index` first; `_`/`.` names skipped."
    nbs = Path(nbs)
    found = [p for p in nbs.rglob('*.ipynb') if not _skipped(p.relative_to(nbs)) and '.ipynb_checkpoints' not in p.parts]
    def key(p):
        rel = p.relative_to(nbs)
        return (len(rel.parts) > 1, rel.parent.as_posix(), rel.stem != 'index', rel.as_posix())
    return sorted(found, key=key)

def page_path(nb:Path, nbs:Path)->Path:
    "The page a notebook becomes, as nbdev names it: `02_backbones.ipynb` -> `backbones.md` (`.html` on the site)."
    rel = nb.relative_to(nbs)
    return rel.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name.lower())).with_suffix('.md')

# ---------------------------------------------------------------------------------------------------
# Step 1: nbdev's processing

def _sha(data:bytes)->str: return hashlib.sha256(data).hexdigest()[:16]

def _invalidate_changed(nbs:Path, proc:Path, force:bool)->tuple[bool, dict]:
    """nbdev's cache compares modification times, which a checkout or a copy can leave older than the cache:
    drop the processed copy of every file whose content changed, and everything when the settings,
    the symbol index (used for links) or nbdev changed. Returns (force, the new content hashes)."""
    import nbdev
    lib = ROOT/read_settings().get('lib_path', 'cmg_nb')
    glob = _sha(b''.join(p.read_bytes() for p in (ROOT/'settings.ini', lib/'_modidx.py') if p.exists()) + nbdev.__version__.encode())
    new = {'__global__': glob}
    for p in sorted(nbs.rglob('*')):
        rel = p.relative_to(nbs)
        if p.is_file() and not _skipped(rel): new[rel.as_posix()] = _sha(p.read_bytes())
    stamp = proc/'.cmg_docs_sources.json'
    try: old = json.loads(stamp.read_text())
    except (OSError, ValueError): old = {}
    if force or old.get('__global__') != glob: return True, new
    for rel, h in new.items():
        if rel != '__global__' and old.get(rel) != h and (proc/rel).exists(): (proc/rel).unlink()
    return False, new

def process_notebooks(force:bool=False, n_workers:int|None=None)->Path:
    "Run nbdev's docs processors over `nbs/` into `_proc/` (only changed notebooks unless `force`)."
    try: from nbdev.serve import proc_nbs
    except ImportError: sys.exit("build_docs: nbdev is missing: run it with the project's environment "
                                 "(`bash tools/dev.sh setup`, then `.venv/bin/python tools/build_docs.py`)")
    settings = read_settings()
    nbs, proc = ROOT/settings.get('nbs_path', 'nbs'), ROOT/'_proc'
    force, hashes = _invalidate_changed(nbs, proc, force)
    cwd = os.getcwd()
    os.chdir(ROOT)   # nbdev finds settings.ini from the working directory
    try:
        out = Path(proc_nbs(force=force, n_workers=n_workers or min(2, os.cpu_count() or 1)))
        (out/'.cmg_docs_sources.json').write_text(json.dumps(hashes, indent=0))
        return out
    except Exception as e:
        # nbdev re-runs show_doc cells and every cell that imports something; say which one failed and why.
        cause = str(e.__cause__ or '').strip().splitlines()
        why = next((l.strip() for l in cause if re.match(r'^[\w.]*(Error|Exception|Interrupt|Exit)\b:?', l) and 'Error in notebook' not in l), '')
        m = re.match(r'Error(?: in notebook: (.*?))? in cell (\d+) :\n(.*)', str(e).strip(), flags=re.S)
        where, src = (f"notebook {m.group(1) or '?'!r}, cell {m.group(2)}", m.group(3)) if m else ('a notebook', str(e))
        sys.exit(f"build_docs: FAILED: nbdev could not process {where}: {why or type(e).__name__}\n"
                 "build_docs: nbdev_docs and this build re-run show_doc cells and every cell that contains an import, "
                 "so keep imports in cells of their own. The cell:\n" + src.strip())
    finally: os.chdir(cwd)

# ---------------------------------------------------------------------------------------------------
# Step 2: notebook -> Markdown page

_ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')
_DIRECTIVE = re.compile(r'^\s*#\s*\|\s*(.*?)\s*$')
_LIST_ITEM = re.compile(r'^(\s*)([-*+]|\d+[.)])\s+\S')
_FENCE = re.compile(r'^\s*(`{3,}|~{3,})')

def _src(x)->str: return ''.join(x) if isinstance(x, list) else (x or '')

def cell_directives(source:str)->tuple[dict, str]:
    "Split a code cell into its `#|` directives (as a dict; bare flags map to True) and the rest."
    lines, opts = source.splitlines(), {}
    i = 0
    while i < len(lines) and (m := _DIRECTIVE.match(lines[i])):
        d = m.group(1)
        if ':' in d:
            k, v = d.split(':', 1)
            v = v.strip()
            opts[k.strip()] = {'false': False, 'true': True}.get(v.lower(), v)
        elif d: opts[d.split()[0]] = True
        i += 1
    return opts, '\n'.join(lines[i:]).strip('\n')

def front_matter(nb:dict)->dict:
    "The YAML front matter nbdev puts in a notebook's first raw cell (empty when there is none)."
    import yaml
    for c in nb.get('cells', [])[:2]:
        s = _src(c['source']).strip()
        if c['cell_type'] == 'raw' and s.startswith('---'):
            try: return yaml.safe_load(s.strip('-\n')) or {}
            except yaml.YAMLError: return {}
    return {}

def _fix_lists(md:str)->str:
    """Adapt CommonMark lists (Jupyter's dialect) to Python-Markdown's: a list that interrupts a paragraph
    gets the blank line before it that Python-Markdown needs, and 2-space nesting becomes 4-space."""
    out, block, fence, in_math = [], [], False, False
    def flush():
        if not block: return
        ind, in_code = [], False
        for l in block:   # indentation of the items' nested lines (outside code fences)
            if not in_code and l.strip() and l[:1] == ' ': ind.append(len(l) - len(l.lstrip(' ')))
            if _FENCE.match(l): in_code = not in_code
        if ind and min(ind) < 4:   # double the indentation; code fences in items move along with their opener
            in_code, extra, res = False, 0, []
            for l in block:
                n = len(l) - len(l.lstrip(' '))
                if in_code:
                    res.append(' ' * extra + l)
                    if _FENCE.match(l): in_code = False
                    continue
                if _FENCE.match(l): in_code, extra = True, n
                res.append(' ' * (2 * n) + l[n:])
            block[:] = res
        out.extend(block); block.clear()
    for line in md.split('\n'):
        if _FENCE.match(line) and not in_math: fence = not fence
        elif not fence and line.count('$$') % 2: in_math = not in_math
        plain = not fence and not in_math
        if block:
            if line.strip() == '' or line[:1] in ' \t' or not plain or _LIST_ITEM.match(line):
                block.append(line); continue
            if block[-1].strip() != '': block.append(line); continue   # lazy continuation of the last item
            flush()
        m = _LIST_ITEM.match(line) if plain else None
        if m and not m.group(1):
            para = out and out[-1].strip() and not _LIST_ITEM.match(out[-1])
            # CommonMark: only a bullet or an ordered list that starts at 1 interrupts a paragraph
            if para and (m.group(2) in '-*+' or m.group(2)[:-1] == '1'): out.append('')
            if not para or out[-1] == '': block.append(line); continue
        out.append(line)
    flush()
    return '\n'.join(out)

_CALLOUT = re.compile(r'^:::+\s*\{\.callout-(\w+)[^}]*\}\s*$')
_ADMONITION = {'note': 'note', 'tip': 'tip', 'warning': 'warning', 'important': 'info', 'caution': 'warning'}

def _callouts(md:str)->str:
    "Quarto callouts (`::: {.callout-note}`) become Material admonitions; other `:::` divs are unwrapped."
    out, depth = [], []
    for line in md.split('\n'):
        m = _CALLOUT.match(line)
        if m: out.append(f"!!! {_ADMONITION.get(m.group(1), 'note')}"); out.append(''); depth.append(True); continue
        if re.match(r'^:::+\s*\{.*\}\s*$', line) or re.match(r'^:::+\s*[\w-]+\s*$', line): depth.append(False); continue
        if re.match(r'^:::+\s*$', line) and depth: depth.pop(); out.append(''); continue
        out.append(('    ' + line if line.strip() else line) if any(depth) else line)
    return '\n'.join(out)

class Linker:
    "Rewrites links between notebooks and to this site's own URL into relative links between pages; drops links into `repo_url`."
    def __init__(self, pages:dict[str, Path], site_url:str='', repo_url:str=''):
        self.pages, self.site_url = pages, site_url.rstrip('/')   # pages: notebook or page stem -> page .md path
        self.repo_url = repo_url.rstrip('/')   # show_doc's "source" links point there: a placeholder until the repository is public
    def target(self, url:str, here:Path)->str:
        if self.site_url and url.startswith(self.site_url + '/'): url = url[len(self.site_url)+1:]
        if re.match(r'^[a-z][\w+.-]*:', url, re.I) or url.startswith(('#', '/')): return url
        path, frag = (url.split('#', 1) + [''])[:2]
        p = Path(path)
        if p.suffix in ('.ipynb', '.html', '.md', '.qmd'):
            key = (here.parent/p).as_posix() if here.parent != Path('.') else p.as_posix()
            key = re.sub(r'\.(ipynb|html|md|qmd)$', '', os.path.normpath(key))
            if key in self.pages:
                rel = os.path.relpath(self.pages[key], here.parent)
                return rel + (f'#{frag}' if frag else '')
        return url
    def __call__(self, md:str, here:Path)->str:
        if self.repo_url:
            md = re.sub(r'<p><a href="' + re.escape(self.repo_url) + r'/[^"]*"[^>]*>source</a></p>\n?', '', md)
            md = re.sub(r'\[source\]\(' + re.escape(self.repo_url) + r'/[^)]*\)(\{[^}\n]*\})?', '', md)   # with show_doc's {target=...}
        md = re.sub(r'(\]\()(<?)([^)\s>]+)', lambda m: m.group(1) + m.group(2) + self.target(m.group(3), here), md)
        return re.sub(r'(href=")([^"]+)(")', lambda m: m.group(1) + self.target(m.group(2), here) + m.group(3), md)

def _pre(text:str, cls:str)->str:
    return f'<div class="nb-output {cls}"><pre><code>{html.escape(text)}</code></pre></div>'

def _clean_stream(text:str)->str:
    "Strip ANSI colours and keep what a terminal would show after carriage returns (progress bars)."
    text = _ANSI.sub('', text)
    return '\n'.join(l.rstrip('\r').split('\r')[-1] for l in text.split('\n')).rstrip('\n')

def _code_block(source:str, lang:str='python')->str:
    runs = [len(m) for m in re.findall(r'`{3,}', source)]
    fence = '`' * max([3] + [r + 1 for r in runs])
    return f'{fence}{lang}\n{source}\n{fence}'

def _unlink_code(md:str)->str:
    "Inside fenced code (show_doc's signatures) a Markdown link is shown raw: keep only its text, '[`X`](url)' -> 'X'."
    unlink = lambda m: re.sub(r'\[`?([^\]`]*)`?\]\([^)\s]*\)', r'\1', m.group(0))
    return re.sub(r'^```.*?^```', unlink, md, flags=re.M | re.S)

def render_outputs(outputs:list, asset_dir:Path, asset_rel:str, prefix:str, show_doc:bool=False)->list[str]:
    "Markdown/HTML blocks for one cell's outputs; images are written to `asset_dir`."
    blocks, i = [], 0
    streams = []
    def flush_streams():
        for name, text in streams:
            text = _clean_stream(text)
            if text.strip(): blocks.append(_pre(text, 'nb-stderr' if name == 'stderr' else 'nb-stream'))
        streams.clear()
    for o in outputs:
        kind = o.get('output_type')
        if kind == 'stream':
            if streams and streams[-1][0] == o.get('name'): streams[-1] = (o.get('name'), streams[-1][1] + _src(o.get('text')))
            else: streams.append((o.get('name'), _src(o.get('text'))))
            continue
        flush_streams()
        if kind == 'error':
            tb = _ANSI.sub('', '\n'.join(o.get('traceback') or [f"{o.get('ename')}: {o.get('evalue')}"]))
            blocks.append(_pre(tb, 'nb-error'))
            continue
        data = o.get('data', {})
        img = next((m for m in ('image/png', 'image/jpeg', 'image/gif') if m in data), None)
        if img or 'image/svg+xml' in data:
            i += 1
            if img: ext, raw = img.split('/')[1].replace('jpeg', 'jpg'), base64.b64decode(_src(data[img]))
            else: ext, raw = 'svg', _src(data['image/svg+xml']).encode()
            asset_dir.mkdir(parents=True, exist_ok=True)
            name = f'{prefix}_{i}.{ext}'
            (asset_dir/name).write_bytes(raw)
            alt = html.escape(_src(data.get('text/plain', 'output')).strip()[:80], quote=True)
            blocks.append(f'<div class="nb-output nb-image"><img src="{asset_rel}/{name}" alt="{alt}"></div>')
        elif 'text/markdown' in data:
            md = _src(data['text/markdown']).strip('\n')
            if show_doc: md = _unlink_code(re.sub(r'^(#{2,6} .*\S)\s*$', r'\1 { .nb-doc }', md, count=1, flags=re.M))
            blocks.append(md)
        elif 'text/html' in data:
            blocks.append(f'<div class="nb-output nb-html">\n{_src(data["text/html"]).strip()}\n</div>')
        elif 'text/latex' in data:
            blocks.append(_src(data['text/latex']).strip())
        elif 'text/plain' in data:
            blocks.append(_pre(_ANSI.sub('', _src(data['text/plain'])), 'nb-result'))
    flush_streams()
    return blocks

_TEST_LINE = re.compile(r'^(test_\w+\(|assert\b|#|for .*:\s*(test_\w+\(|assert\b)|(\w+\s*=\s*)?np\.testing\.|[\])},]|with pytest)')

def is_test_cell(code:str, outputs:list)->bool:
    "A cell without output whose statements are mostly checks (test_eq, test_fail, assert, ...): kept in the notebook, left off its page."
    tops = [l for l in code.splitlines() if l.strip() and not l[0].isspace() and not l.startswith('#')]
    n = sum(bool(_TEST_LINE.match(l)) or ('; test_' in l) for l in tops)
    return bool(tops) and not outputs and n > 0 and 2 * n >= len(tops)

def _is_check(node)->bool:
    "A statement that only checks: `assert ...`, a call of `test_*`/`np.testing.*`, or a loop whose body only checks."
    if isinstance(node, ast.Assert): return True
    if isinstance(node, ast.For): return all(_is_check(n) for n in node.body) and not node.orelse
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        name = ast.unparse(node.value.func)
        return name.startswith(('test_', 'np.testing.'))
    return False

def strip_checks(code:str)->str:
    """The cell as a reader needs it: top-level checks (`test_eq`, `test_fail`, `assert`, ...) taken out, so that a cell that
    shows a result and then tests it shows only the result on its page (the notebook keeps the tests). A line with a check
    and other code is kept whole; code that does not parse (magics) is returned as it is."""
    try: tree = ast.parse(code)
    except SyntaxError: return code
    drop, keep = set(), set()
    for node in tree.body: (drop if _is_check(node) else keep).update(range(node.lineno - 1, node.end_lineno))
    if not (gone := drop - keep): return code
    return '\n'.join(l for i, l in enumerate(code.split('\n')) if i not in gone).strip('\n')

def notebook_to_markdown(nb:dict, page:Path, asset_dir:Path, linker:Linker|None=None)->tuple[str, str]:
    "A processed notebook as one Markdown page (and its title); image outputs are written to `asset_dir`."
    fm = front_matter(nb)
    title = str(fm.get('title') or page.stem.replace('_', ' ').title())
    desc = str(fm.get('description') or '').strip()
    asset_rel = asset_dir.name
    link = linker or (lambda md, here: md)
    parts = [f'# {title}']
    if desc: parts.append(f'{link(desc, page)}\n{{: .nb-description }}')
    for n, c in enumerate(nb.get('cells', [])):
        src = _src(c.get('source'))
        if c['cell_type'] == 'markdown':
            s = src.strip()
            if not s or s.startswith('<!-- WARNING: THIS FILE WAS AUTOGENERATED'): continue
            parts.append(link(_callouts(_fix_lists(s)), page))
        elif c['cell_type'] == 'code':
            opts, code = cell_directives(src)
            if opts.get('hide') or opts.get('include') is False or opts.get('export') or opts.get('exporti'): continue
            if is_test_cell(code, c.get('outputs', [])): continue              # tests stay in the notebook, off the page
            code = strip_checks(code)
            if code.strip() and opts.get('echo') is not False:
                parts.append(_code_block(code, c.get('metadata', {}).get('language', 'python')))
            if opts.get('output') is not False:
                show_doc = bool(re.search(r'\bshow_doc\(', code))
                parts += [link(o, page) for o in render_outputs(c.get('outputs', []), asset_dir, asset_rel, f'cell{n}', show_doc)]
    return '\n\n'.join(parts) + '\n', title

# ---------------------------------------------------------------------------------------------------
# Step 3: MkDocs

def mathjax_dir()->Path:
    "MathJax 3's browser build, as shipped by the `django-static-mathjax` wheel (a plain copy, no Django needed)."
    try: import mathjax
    except ImportError: sys.exit("build_docs: MathJax is missing: pip install django-static-mathjax (in the dev extras)")
    d = Path(mathjax.__file__).parent/'static'/'mathjax'/'es5'
    if not (d/'tex-svg.js').exists(): sys.exit(f"build_docs: no MathJax browser build at {d}")
    return d

def copy_mathjax(dest:Path):
    "Copy the parts of MathJax the site loads: the TeX-to-SVG bundle, its lazily loaded TeX extensions and menu."
    src = mathjax_dir()
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src/'tex-svg.js', dest/'tex-svg.js')
    for sub in ('input/tex/extensions', 'ui', 'a11y', 'adaptors', 'output/svg'):
        if (src/sub).exists(): shutil.copytree(src/sub, dest/sub, dirs_exist_ok=True)
    if (src.parent/'LICENSE').exists(): shutil.copy2(src.parent/'LICENSE', dest/'LICENSE')

def write_pages(proc:Path, nbs:Path, docs:Path, settings:dict)->list:
    "Markdown pages for every notebook of `nbs` (read from its processed copy in `proc`); returns the nav."
    import yaml
    notebooks = source_notebooks(nbs)
    pages = {}
    for nb in notebooks:
        rel, page = nb.relative_to(nbs), page_path(nb, nbs)
        for key in (rel.with_suffix('').as_posix(), page.with_suffix('').as_posix()): pages[key] = page
    site_url = settings.get('doc_host', '').rstrip('/') + settings.get('doc_baseurl', '')
    linker = Linker(pages, site_url, settings.get('git_url', ''))
    nav = []
    for nb in notebooks:
        rel, page = nb.relative_to(nbs), page_path(nb, nbs)
        processed = proc/rel
        if not processed.exists(): raise FileNotFoundError(f"nbdev did not process {rel} (no {processed}); try --force")
        nbj = json.loads(processed.read_text(encoding='utf-8'))
        asset_dir = docs/page.parent/f'{page.stem}_files'
        md, title = notebook_to_markdown(nbj, page, asset_dir, linker)
        fm = front_matter(nbj)
        meta = {'title': title}
        if fm.get('description'): meta['description'] = str(fm['description'])
        (docs/page).parent.mkdir(parents=True, exist_ok=True)
        (docs/page).write_text('---\n' + yaml.safe_dump(meta, allow_unicode=True, width=1000) + '---\n\n' + md, encoding='utf-8')
        label = 'Home' if page.as_posix() == 'index.md' else title
        if len(page.parts) == 1: nav.append({label: page.as_posix()})
        else:
            section = page.parts[0].replace('_', ' ').title()
            sec = next((d for d in nav if isinstance(d, dict) and section in d and isinstance(d[section], list)), None)
            if sec is None: nav.append(sec := {section: []})
            sec[section].append({label: page.as_posix()})
    if not (docs/'index.md').exists(): nav.insert(0, {'Home': 'index.md'}); _fallback_index(docs, settings, linker)
    # pictures and other files the notebooks' Markdown refers to
    for f in nbs.rglob('*'):
        rel = f.relative_to(nbs)
        if f.is_file() and not _skipped(rel) and f.suffix.lower() in ('.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp', '.pdf', '.csv'):
            (docs/rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, docs/rel)
    return nav

def _fallback_index(docs:Path, settings:dict, linker:Linker):
    "A landing page while `nbs/index.ipynb` does not exist: the README if there is one, else the description."
    readme = ROOT/'README.md'
    if readme.exists(): md = linker(_fix_lists(readme.read_text(encoding='utf-8')), Path('index.md'))
    else: md = f"# {settings.get('title', settings.get('lib_name', ''))}\n\n{settings.get('description', '')}\n"
    (docs/'index.md').write_text(md, encoding='utf-8')

def write_config(nav:list, docs:Path, site:Path, settings:dict)->Path:
    "The MkDocs config: the template in tools/docs/ plus this build's name, paths and nav."
    import yaml
    cfg = yaml.safe_load((TEMPLATE_DIR/'mkdocs.yml').read_text(encoding='utf-8'))
    cfg.update(site_name=settings.get('title') or settings['lib_name'], site_description=settings.get('description', ''),
               docs_dir=str(docs), site_dir=str(site), nav=nav, hooks=[str(TEMPLATE_DIR/'hooks.py')])
    if settings.get('copyright'): cfg['copyright'] = f"Copyright {settings['copyright']}"
    path = docs.parent/'mkdocs.yml'
    path.write_text('# Generated by tools/build_docs.py from tools/docs/mkdocs.yml: edit those, not this.\n'
                    + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding='utf-8')
    return path

def build(force:bool=False, strict:bool=True, out:Path|None=None, quiet:bool=False)->Path:
    "Build the whole site into `out` (settings' doc_path, `_docs/`, by default) and return its index.html."
    t0 = time.monotonic()
    settings = read_settings()
    nbs = ROOT/settings.get('nbs_path', 'nbs')
    site = Path(out) if out else ROOT/settings.get('doc_path', '_docs')
    site = site if site.is_absolute() else ROOT/site
    say = (lambda *a: None) if quiet else (lambda *a: print('build_docs:', *a, flush=True))
    if not source_notebooks(nbs): sys.exit(f"build_docs: no notebooks in {nbs}")
    say(f"processing notebooks with nbdev -> _proc/ ({'all' if force else 'changed ones'})")
    proc = process_notebooks(force=force)
    say(f"  done in {time.monotonic()-t0:.0f} s; writing pages")
    if MKDOCS_DIR.exists(): shutil.rmtree(MKDOCS_DIR)
    docs = MKDOCS_DIR/'docs'
    (docs/'assets').mkdir(parents=True)
    for f in ('cmg_docs.css', 'mathjax-config.js', 'iframe-worker-shim.js'): shutil.copy2(TEMPLATE_DIR/f, docs/'assets'/f)
    copy_mathjax(docs/'assets'/'mathjax')
    nav = write_pages(proc, nbs, docs, settings)
    cfg = write_config(nav, docs, site, settings)
    say(f"building {len(source_notebooks(nbs))} pages with MkDocs -> {site.relative_to(ROOT) if site.is_relative_to(ROOT) else site}/")
    cmd = [sys.executable, '-m', 'mkdocs', 'build', '--clean', '-f', str(cfg)] + (['--strict'] if strict else []) + (['-q'] if quiet else [])
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, 'NO_MKDOCS_2_WARNING': '1'})
    log = [l for l in (r.stdout + r.stderr).splitlines() if l.strip() and not l.startswith('INFO')]
    if log: print('\n'.join(log), file=sys.stderr)
    if r.returncode: sys.exit(f"build_docs: MkDocs failed (exit {r.returncode}); see the messages above")
    index = site/'index.html'
    say(f"built {index} in {time.monotonic()-t0:.0f} s")
    return index

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--force', action='store_true', help="re-process every notebook with nbdev (default: only changed ones)")
    p.add_argument('--no-strict', action='store_true', help="do not fail on MkDocs warnings (broken links, missing pages)")
    p.add_argument('--out', type=Path, help="site folder (default: settings.ini's doc_path, _docs/)")
    p.add_argument('-q', '--quiet', action='store_true')
    a = p.parse_args(argv)
    build(force=a.force, strict=not a.no_strict, out=a.out, quiet=a.quiet)

if __name__ == '__main__': main()
