"""The offline docs site (`python tools/build_docs.py` -> `_docs/`), checked the way a reader sees it.

The converter's pieces are unit-tested first (no browser). Then the site is built (without network
where the OS allows a private network namespace) and opened in headless Chromium (Debian's `chromium`
+ `chromium-driver`, driven by selenium through the system chromedriver, so nothing is downloaded) over
a loopback HTTP server, and every notebook's page is visited. A page fails when it is missing, shows a
raw `$$`, untypeset LaTeX or a MathJax error, shows a Python traceback, has a broken internal link or
image, loads anything from outside the site (no CDN), lacks its notebook's plots, its title cell's
text or a public symbol of its module, or has no search box or sidebar in the notebooks' order. The
search box must find a public function; the landing page must match the README. Screenshots of the
landing page, the most equation-heavy page and the first plots are saved under `_docs/` (CI artifacts).

The site is (re)built here when a page is missing or `_docs/` is older than its sources. Without
Chromium the browser tests are skipped with the reason, except under CI (`CI` set), where they fail.
"""
from __future__ import annotations
import ast, base64, configparser, functools, html, http.server, importlib.util, json, os, re
import shutil, subprocess, sys, tempfile, threading, time
from pathlib import Path
from urllib.parse import unquote, urlsplit
import pytest

ROOT = Path(__file__).resolve().parents[1]
_cfg = configparser.ConfigParser(delimiters=['='])
_cfg.read(ROOT/'settings.ini', encoding='utf-8')
SETTINGS = _cfg['DEFAULT']
NBS = ROOT/SETTINGS.get('nbs_path', 'nbs')
LIB = ROOT/SETTINGS.get('lib_path', SETTINGS['lib_name'])
SITE = ROOT/SETTINGS.get('doc_path', '_docs')
BUILD = ROOT/'tools'/'build_docs.py'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMEDRIVER = shutil.which('chromedriver')
CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync',
                '--disable-dev-shm-usage', '--window-size=1400,1000']

# ---------------------------------------------------------------------------------------------------
# What the site must contain, read from the notebooks and the library (not from the build's code)

def notebooks()->list[Path]:
    "Every notebook nbdev publishes: `_`/`.` names skipped; docs order = by path with `index` first."
    nbs = [p for p in NBS.rglob('*.ipynb')
           if not any(part.startswith(('_', '.')) for part in p.relative_to(NBS).parts)]
    return sorted(nbs, key=lambda p: (len(p.relative_to(NBS).parts) > 1, p.relative_to(NBS).parent.as_posix(),
                                      p.stem != 'index', p.relative_to(NBS).as_posix()))

def page_of(nb:Path)->str:
    "nbdev's page name for a notebook: the name in lower case without its number prefix, as .html."
    rel = nb.relative_to(NBS)
    return rel.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name.lower())).with_suffix('.html').as_posix()

def _cells(nb:Path)->list[dict]: return json.loads(nb.read_text(encoding='utf-8'))['cells']
def _src(x)->str: return ''.join(x) if isinstance(x, list) else (x or '')

def _directives(source:str)->dict:
    out = {}
    for line in source.splitlines():
        m = re.match(r'^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$', line)
        if not m: break
        out[m.group(1)] = m.group(2).lower() or True
    return out

def default_exp(nb:Path)->str|None:
    "The module a notebook exports to (`#| default_exp name`), or None."
    for c in _cells(nb):
        if c['cell_type'] == 'code' and (v := _directives(_src(c['source'])).get('default_exp')): return v
    return None

def public_symbols(module:str)->dict[str, bool]:
    "A library module's `__all__` (read from its source), each name mapped to 'is a function or class'."
    path = LIB.joinpath(*module.split('.')).with_suffix('.py')
    if not path.exists(): path = LIB.joinpath(*module.split('.'), '__init__.py')
    tree = ast.parse(path.read_text(encoding='utf-8'))
    names = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '__all__' for t in node.targets):
            names = list(ast.literal_eval(node.value))
    defs = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return {n: n in defs for n in names}

def _strip_md(md:str)->str:
    "Markdown prose without maths, link targets, HTML tags and URLs (what remains is read on the page)."
    md = re.sub(r'<!--.*?-->', '', md, flags=re.S)
    md = re.sub(r'\$\$.*?\$\$|\$[^$\n]+\$', ' ', md, flags=re.S)
    md = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', md)
    return re.sub(r'<[^>]+>|https?://\S+', ' ', md)

def _words(text:str)->list[str]: return re.findall(r'[A-Za-z]{4,}', text.lower())

def title_cell(nb:Path)->tuple[str, str]|None:
    "The notebook's title (`# Title` of its first Markdown cell) and the rest of that cell, or None."
    for c in _cells(nb):
        if c['cell_type'] != 'markdown': continue
        src = _src(c['source'])
        m = re.search(r'^#\s+(\S.*?)\s*$', src, flags=re.M)
        if not m: return None
        rest = src[:m.start()] + src[m.end():]
        rest = re.sub(r'^-\s+\S.*:.*$', '', rest, flags=re.M)      # `- key: value` front matter lines
        return m.group(1), _strip_md(rest)
    return None

def shown_images(nb:Path)->int:
    "Image outputs (plots) of the notebook's cells that the docs show (not hidden, not exported, output kept)."
    n = 0
    for c in _cells(nb):
        if c['cell_type'] != 'code': continue
        d = _directives(_src(c['source']))
        if d.get('hide') or d.get('include') == 'false' or d.get('output') == 'false' or d.get('export'): continue
        n += sum(any(k.startswith('image/') for k in o.get('data', {})) for o in c.get('outputs', []))
    return n

# ---------------------------------------------------------------------------------------------------
# Unit tests of the converter (tools/build_docs.py), no browser needed

@pytest.fixture(scope='module')
def bd():
    spec = importlib.util.spec_from_file_location('build_docs', BUILD)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

def test_cell_directives(bd):
    assert bd.cell_directives("#| echo: false\n#| output: asis\nshow_doc(f)") == ({'echo': False, 'output': 'asis'}, 'show_doc(f)')
    assert bd.cell_directives("#|hide\nx = 1\n#| not a directive") == ({'hide': True}, 'x = 1\n#| not a directive')
    assert bd.cell_directives("y = 2") == ({}, 'y = 2')

def test_lists_become_python_markdown(bd):
    # Jupyter renders a list right after a paragraph line, and 2-space nesting; Python-Markdown needs
    # a blank line before the list and 4-space nesting.
    assert bd._fix_lists("The methods:\n- ssd\n- cmg\n\nDone.") == "The methods:\n\n- ssd\n- cmg\n\nDone."
    assert bd._fix_lists("Steps:\n1. one\n  - sub\n2. two") == "Steps:\n\n1. one\n    - sub\n2. two"
    assert bd._fix_lists("- a\n\n  more of a\n- b\n  ```py\n  x\n      y\n  ```") == "- a\n\n    more of a\n- b\n    ```py\n    x\n        y\n    ```"
    assert bd._fix_lists("In the year\n2024. Not a list") == "In the year\n2024. Not a list"   # as in CommonMark
    # already fine, inside code fences, or inside display maths: untouched
    for md in ("Text\n\n- a\n    - b", "```\nx\n- not a list\n```", "$$\na\n- b\n$$"):
        assert bd._fix_lists(md) == md

def test_page_names_and_links(bd, tmp_path):
    nbs = tmp_path/'nbs'
    for name in ('index.ipynb', '00_core.ipynb', '02_backbones.ipynb', '_scratch.ipynb', '10b_more_stuff.ipynb'):
        (nbs/name).parent.mkdir(parents=True, exist_ok=True); (nbs/name).write_text('{}')
    assert [p.name for p in bd.source_notebooks(nbs)] == ['index.ipynb', '00_core.ipynb', '02_backbones.ipynb', '10b_more_stuff.ipynb']
    assert [bd.page_path(p, nbs).as_posix() for p in bd.source_notebooks(nbs)] == ['index.md', 'core.md', 'backbones.md', 'more_stuff.md']
    link = bd.Linker({'02_backbones': Path('backbones.md'), 'backbones': Path('backbones.md')}, 'https://x.io/lib')
    here = Path('core.md')
    assert link.target('https://x.io/lib/backbones.html#image_backbone', here) == 'backbones.md#image_backbone'
    assert link.target('02_backbones.ipynb', here) == 'backbones.md'
    assert link.target('backbones.html#normalize', here) == 'backbones.md#normalize'
    for url in ('https://pytorch.org/docs', '#local', 'missing.html', 'mailto:a@b.c'): assert link.target(url, here) == url
    assert link("see [`image_backbone`](https://x.io/lib/backbones.html#image_backbone).", here) == "see [`image_backbone`](backbones.md#image_backbone)."
    repo = bd.Linker({}, '', 'https://github.com/o/r')        # show_doc's source link goes with its attribute list
    assert repo('---\n[source](https://github.com/o/r/blob/main/x.py#L3){target="_blank" style="float:right"}\n### f', here) == '---\n\n### f'

def test_links_inside_signatures_become_text(bd):
    "show_doc links names in a signature's comments; inside a code block the link would show raw, so only its text is kept."
    md = "```python\ndef f(\n    c:X=None, # a [`CMGConfig`](core.md#cmgconfig)\n)\n```\n\nsee [`CMGConfig`](core.md#cmgconfig)"
    assert bd._unlink_code(md) == "```python\ndef f(\n    c:X=None, # a CMGConfig\n)\n```\n\nsee [`CMGConfig`](core.md#cmgconfig)"

def test_notebook_to_markdown(bd, tmp_path):
    png = base64.b64encode(b'\x89PNG\r\n\x1a\n' + b'0' * 20).decode()
    def code(src, *outs): return {'cell_type': 'code', 'source': src, 'metadata': {}, 'outputs': list(outs)}
    nb = {'cells': [
        {'cell_type': 'raw', 'source': '---\ntitle: Some title\ndescription: What it is\n---', 'metadata': {}},
        {'cell_type': 'markdown', 'source': 'Maths $x^2$ and a list:\n- one', 'metadata': {}},
        code('#| include: false\nsecret = 1', {'output_type': 'stream', 'name': 'stdout', 'text': 'hidden output'}),
        code('#| echo: false\n#| output: asis\nshow_doc(f)',
             {'output_type': 'execute_result', 'data': {'text/markdown': '---\n\n### f\n\n*Docstring.*', 'text/plain': 'f'}}),
        code('plot()', {'output_type': 'display_data', 'data': {'image/png': png, 'text/plain': '<Figure>'}}),
        code('for i in range(3): print(i, end="\\r")', {'output_type': 'stream', 'name': 'stdout', 'text': '0\r1\r2<b>\n'}),
        code('1/0', {'output_type': 'error', 'ename': 'ZeroDivisionError', 'evalue': 'division by zero',
                     'traceback': ['\x1b[31mTraceback (most recent call last)\x1b[0m', 'ZeroDivisionError: division by zero']}),
    ]}
    md, title = bd.notebook_to_markdown(nb, Path('page.md'), tmp_path/'page_files')
    assert title == 'Some title'
    assert md.startswith('# Some title\n\nWhat it is\n{: .nb-description }')
    assert 'Maths $x^2$ and a list:\n\n- one' in md
    assert 'secret' not in md and 'hidden output' not in md            # include: false drops code and output
    assert 'show_doc' not in md and '### f { .nb-doc }' in md            # echo: false; show_doc's Markdown kept
    assert '```python\nplot()\n```' in md
    assert (tmp_path/'page_files'/'cell4_1.png').read_bytes().startswith(b'\x89PNG')
    assert '<img src="page_files/cell4_1.png"' in md
    assert '<pre><code>2&lt;b&gt;</code></pre>' in md                  # last carriage-return state, escaped
    assert 'class="nb-output nb-error"' in md and 'Traceback' in md and '\x1b' not in md

# ---------------------------------------------------------------------------------------------------
# The built site

def _site_inputs():
    yield from (p for p in NBS.rglob('*') if p.is_file())
    yield from (p for p in LIB.rglob('*.py'))
    yield from (p for p in (ROOT/'tools'/'docs').rglob('*') if p.is_file())
    yield from (p for p in (BUILD, ROOT/'settings.ini', ROOT/'README.md') if p.exists())

def _without_network()->list[str]:
    "A command prefix that cuts the build off the network (a fresh network namespace), where the OS allows it."
    if shutil.which('unshare') and hasattr(os, 'geteuid') and os.geteuid() == 0:
        if subprocess.run(['unshare', '--net', 'true'], capture_output=True).returncode == 0: return ['unshare', '--net']
    return []

@pytest.fixture(scope='session')
def site()->Path:
    "The built site: (re)built here when a page is missing, or `_docs/` is older than a source or is Quarto's."
    index = SITE/'index.html'
    newest = max(p.stat().st_mtime for p in _site_inputs())
    missing = [nb for nb in notebooks() if not (SITE/page_of(nb)).exists()]
    ours = index.exists() and 'mkdocs-material' in index.read_text(encoding='utf-8', errors='replace')[:5000]  # not Quarto's
    if not ours or index.stat().st_mtime < newest or missing:
        t0, offline = time.monotonic(), _without_network()
        r = subprocess.run(offline + [sys.executable, str(BUILD)], cwd=ROOT, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            out = r.stdout + r.stderr
            said = '\n'.join(l for l in out.splitlines() if l.startswith('build_docs:'))
            pytest.fail(f"`python tools/build_docs.py` failed (exit {r.returncode}{', without network' if offline else ''}):\n"
                        f"{said}\n--- its output ends with:\n{out[-2500:]}", pytrace=False)
        print(f"built the docs site in {time.monotonic()-t0:.0f} s{' without network' if offline else ''}")
    assert index.exists(), "the docs build wrote no _docs/index.html"
    return SITE

@pytest.fixture(scope='session')
def server(site):
    "A loopback HTTP server over the site (port chosen by the OS), stopped after the session."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{srv.server_port}/'
    srv.shutdown(); srv.server_close()

@pytest.fixture(scope='session')
def browser():
    "Headless Chromium through the system chromedriver (selenium downloads nothing)."
    if not (CHROMIUM and CHROMEDRIVER):
        why = ("Chromium is not installed (Debian packages `chromium` and `chromium-driver`; "
               "`bash tools/dev.sh setup` installs them)")
        if os.environ.get('CI'): pytest.fail(why + ": CI must run the browser tests", pytrace=False)
        pytest.skip(why)
    os.environ['SE_OFFLINE'] = 'true'   # belt and braces: selenium-manager must not fetch anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix='cmg-chromium-')
    for flag in CHROME_FLAGS + [f'--user-data-dir={profile}']: opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60); driver.set_script_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)

_WAIT_MATH = """const done = arguments[arguments.length - 1];
const mj = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
(mj || Promise.resolve()).then(() => done('ok')).catch(e => done('MathJax failed: ' + e));"""

_INSPECT = """
const content = document.querySelector('.md-content') || document.body;
const prose = content.cloneNode(true);
prose.querySelectorAll('pre, code, script, style, .highlight').forEach(e => e.remove());
document.body.appendChild(prose); prose.style.position = 'absolute'; prose.style.left = '-20000px';
const proseText = prose.innerText; prose.remove();
const nav = document.querySelector('.md-nav--primary');
return {
  prose: proseText,
  text: document.body.innerText,
  math: content.querySelectorAll('.arithmatex').length,
  unrendered: [...content.querySelectorAll('.arithmatex')].filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
  // TeX errors: merror nodes, and undefined macros (the noundefined package prints them in red)
  mathErrors: [...content.querySelectorAll('mjx-merror, [data-mjx-error], [data-mml-node="merror"], [data-mml-node="mtext"][fill="red"]')]
    .map(e => { const box = e.closest('mjx-container');
                const item = box && window.MathJax && [...MathJax.startup.document.math].find(m => m.typesetRoot === box);
                return (e.getAttribute('data-mjx-error') || 'error') + ' in ' + (item ? item.math : e.textContent); }),
  nbErrors: content.querySelectorAll('.nb-error').length,
  headings: [...content.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => h.textContent.replace(/\\u00b6/g, '').trim()),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  images: [...content.querySelectorAll('img')].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
  nav: nav ? [...nav.querySelectorAll('a.md-nav__link[href]')].map(a => a.href) : [],
  search: !!document.querySelector('input.md-search__input'),
  resources: performance.getEntriesByType('resource').map(e => e.name)
    .concat([...document.querySelectorAll('script[src]')].map(s => s.src))
    .concat([...document.querySelectorAll('link[href][rel~=stylesheet], link[href][rel~=preconnect]')].map(l => l.href)),
};"""

def visit(driver, url:str)->dict:
    "Open a page, wait for MathJax to finish typesetting, and return what a reader sees."
    driver.get(url)
    state = driver.execute_async_script(_WAIT_MATH)
    assert state == 'ok', f"{url}: {state}"
    return driver.execute_script(_INSPECT)

@functools.lru_cache(maxsize=None)
def _ids(path:Path)->frozenset:
    return frozenset(html.unescape(m) for m in re.findall(r'\bid="([^"]+)"', path.read_text(encoding='utf-8', errors='replace')))

def _local_file(url:str, base:str)->tuple[Path|None, str]:
    "The site file a same-site URL points to (None for other sites) and its fragment."
    if not url.startswith(base): return None, ''
    parts = urlsplit(url)
    rel = unquote(parts.path).lstrip('/')
    target = SITE/rel
    if rel == '' or target.is_dir(): target = target/'index.html'
    return target, unquote(parts.fragment)

NOTEBOOKS = notebooks()

def test_every_notebook_has_a_page(site):
    assert NOTEBOOKS, f"no notebooks found in {NBS}"
    missing = [page_of(nb) for nb in NOTEBOOKS if not (site/page_of(nb)).exists()]
    assert not missing, f"notebooks without a page in {site}: {missing}"
    assert (site/'index.html').exists()

def page_problems(nb:Path, seen:dict, server:str)->list[str]:
    "Everything wrong with a notebook's page, as a reader would notice it (empty when the page is fine)."
    bad = []
    # maths: every formula typeset, no raw TeX left in the prose
    if (i := seen['prose'].find('$$')) >= 0: bad.append(f"shows a raw $$: {seen['prose'][max(0, i-60):i+60]!r}")
    if (raw := re.findall(r'\$[^$\n]*[\\^_{}][^$\n]*\$', seen['prose'])): bad.append(f"shows untypeset LaTeX: {raw[:3]}")
    if seen['unrendered']: bad.append(f"formulas MathJax did not render: {seen['unrendered'][:3]}")
    if seen['mathErrors']: bad.append(f"MathJax errors: {seen['mathErrors'][:3]}")
    # no tracebacks (an error output committed in a notebook, or a failure while building)
    if (tb := re.search(r'Traceback \(most recent call last\)|Cell In\[\d+\], line \d+', seen['text'])) or seen['nbErrors']:
        bad.append(f"shows a Python traceback: {seen['text'][tb.start():tb.start()+300] if tb else ''!r}")
    # the reader's furniture: a search box, a sidebar with every page in the notebooks' order
    if not seen['search']: bad.append("has no search box")
    order = list(dict.fromkeys(u.split('#')[0][len(server):] or 'index.html' for u in seen['nav'] if u.startswith(server)))
    expected = [page_of(n) for n in NOTEBOOKS]
    if [p for p in order if p in expected] != expected: bad.append(f"sidebar lists {order}, not the notebooks' order {expected}")
    # nothing from outside the site (maths served locally, no CDN, no web fonts)
    if (outside := sorted({u for u in seen['resources'] if not u.startswith((server, 'data:', 'blob:', 'about:'))})):
        bad.append(f"loads resources from outside the site: {outside}")
    # internal links lead to existing pages and anchors
    broken = []
    for url in dict.fromkeys(seen['links']):
        target, frag = _local_file(url, server)
        if target is None: continue
        if not target.exists() or (frag and target.suffix == '.html' and frag not in _ids(target)): broken.append(url[len(server):])
    if broken: bad.append(f"broken internal links: {broken[:10]}")
    # plots: every image loads, and all of the notebook's plots are there
    if (failed := [i['src'] for i in seen['images'] if not i['ok']]): bad.append(f"images that do not load: {failed[:5]}")
    if len(seen['images']) < (n_plots := shown_images(nb)): bad.append(f"shows {len(seen['images'])} images; the notebook has {n_plots} plots")
    # nbdev turns the notebook's first Markdown cell into the page's title and one-line description and
    # drops the rest of that cell: nothing written there may go missing
    if (cell := title_cell(nb)):
        title, rest = cell
        if title not in seen['headings']: bad.append(f"the notebook's title {title!r} is not a heading of the page")
        if (lost := sorted({w for w in _words(rest) if w not in set(_words(seen['text']))})):
            bad.append(f"text of the notebook's title cell is missing ({lost[:8]}): nbdev keeps only `# Title` and the FIRST "
                       "line of `> description` from that cell; keep the description on one line and the rest in its own cell")
    # the API reference: each public symbol of the notebook's module is on its page (functions and
    # classes as a show_doc entry, i.e. a heading with their name; other names at least mentioned)
    if (mod := default_exp(nb)):
        symbols = public_symbols(mod)
        if (no_doc := [s for s, is_def in symbols.items() if is_def and s not in seen['headings']]):
            bad.append(f"public symbols of {SETTINGS['lib_name']}.{mod} without a show_doc entry: {no_doc}")
        if (absent := [s for s, is_def in symbols.items() if not is_def and s not in seen['text']]):
            bad.append(f"public names of {SETTINGS['lib_name']}.{mod} never mentioned: {absent}")
    return bad

def test_page_checks_catch_defects(tmp_path):
    "The page checks themselves: silent on a clean page, and each kind of defect is reported."
    nb = tmp_path/'99_fake.ipynb'
    nb.write_text(json.dumps({'cells': [
        {'cell_type': 'markdown', 'metadata': {}, 'source': '# Fake\n\n> One line.\n> A second line nbdev drops.'},
        {'cell_type': 'code', 'metadata': {}, 'outputs': [], 'source': '#| default_exp core'},
        {'cell_type': 'code', 'metadata': {}, 'source': 'plot()', 'outputs': [{'output_type': 'display_data', 'data': {'image/png': ''}}]}]}))
    server, symbols = 'http://127.0.0.1:9/', public_symbols('core')
    clean = {'prose': 'Fake. One line. A second line nbdev drops.', 'unrendered': [], 'mathErrors': [], 'nbErrors': 0,
             'text': 'Fake. One line. A second line nbdev drops. ' + ' '.join(symbols), 'headings': ['Fake', *symbols],
             'links': [], 'images': [{'src': server + 'a.png', 'ok': True}], 'search': True,
             'nav': [server + page_of(n) for n in NOTEBOOKS], 'resources': [server + 'assets/mathjax/tex-svg.js']}
    assert page_problems(nb, clean, server) == []
    defects = {'prose': 'a raw $$x$$', 'unrendered': ['\\(x^2\\)'], 'mathErrors': ['\\undefinedmacro'], 'nbErrors': 1,
               'text': clean['text'] + ' Traceback (most recent call last)', 'headings': ['Fake'], 'search': False,
               'links': [server + 'nothere.html'], 'images': [{'src': server + 'a.png', 'ok': False}],
               'nav': [server + 'index.html'] if len(NOTEBOOKS) > 1 else [], 'resources': ['https://cdn.example.org/tex-svg.js']}
    for key, value in defects.items():
        assert page_problems(nb, {**clean, key: value}, server), f"a page with a bad {key!r} went unreported"
    assert page_problems(nb, {**clean, 'images': []}, server), "a missing plot went unreported"
    assert page_problems(nb, {**clean, 'text': 'Fake. One line. ' + ' '.join(symbols)}, server), "lost description unreported"

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_page(nb, site, server, browser):
    page = page_of(nb)
    assert (site/page).exists(), f"{nb.name} has no page {page} in {site}"
    bad = page_problems(nb, visit(browser, server + page), server)
    assert not bad, f"{page} (from {nb.relative_to(ROOT)}):\n  - " + '\n  - '.join(bad)

def _symbol_to_search()->tuple[str, str]|None:
    for nb in NOTEBOOKS:
        if (mod := default_exp(nb)):
            for s, is_def in public_symbols(mod).items():
                if is_def and len(s) > 4: return s, page_of(nb)
    return None

def test_search_finds_a_symbol(site, server, browser):
    target = _symbol_to_search()
    if target is None: pytest.skip("no public function or class to search for yet")
    symbol, page = target
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    visit(browser, server + 'index.html')
    box = browser.find_element(By.CSS_SELECTOR, 'input.md-search__input')
    WebDriverWait(browser, 10).until(lambda d: box.is_enabled() and box.is_displayed())
    box.click()
    box.send_keys(symbol)
    found = lambda d: [a.get_attribute('href') for a in d.find_elements(By.CSS_SELECTOR, '.md-search-result__item a')]
    try: hits = WebDriverWait(browser, 20).until(lambda d: found(d) or None)
    except Exception: hits = found(browser)
    assert any(page in (h or '') for h in hits), f"searching {symbol!r} did not find {page}: {hits[:5]}"

def test_landing_page_matches_readme(site, server, browser):
    readme = ROOT/'README.md'
    assert readme.exists(), "README.md is missing (it is generated from nbs/index.ipynb)"
    md = readme.read_text(encoding='utf-8')
    md = re.sub(r'<!--.*?-->', '', md, flags=re.S)
    blocks = re.findall(r'^(`{3,}|~{3,})[^\n]*\n(.*?)^\1', md, flags=re.S | re.M)
    prose = _strip_md(re.sub(r'^(`{3,}|~{3,})[^\n]*\n.*?^\1', '', md, flags=re.S | re.M))
    heads = [re.sub(r'[`*]', '', h).strip() for h in re.findall(r'^#{1,6}\s+(.*?)\s*#*\s*$', prose, flags=re.M)]
    seen = visit(browser, server + 'index.html')
    page_heads = {h.strip() for h in seen['headings']}
    assert not [h for h in heads if h not in page_heads], f"README headings missing on the landing page: {[h for h in heads if h not in page_heads]}"
    words, have = _words(prose), set(_words(seen['text']))
    missing = sorted({w for w in words if w not in have})
    assert len(missing) <= max(3, len(set(words)) // 50), f"README words missing on the landing page: {missing[:30]}"
    norm = lambda s: re.sub(r'\s+', ' ', s).strip()
    text = norm(seen['text'])
    lost = [b.strip().splitlines()[0] for _, b in blocks if b.strip() and norm(b.strip().splitlines()[0]) not in text]
    assert not lost, f"README code blocks missing on the landing page: {lost[:5]}"

def _screenshot(driver, path:Path, top:int=0, max_height:int=3500):
    width = driver.execute_script("return document.documentElement.clientWidth")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    clip = {'x': 0, 'y': top, 'width': width, 'height': max(1, min(height - top, max_height)), 'scale': 1}
    shot = driver.execute_cdp_cmd('Page.captureScreenshot', {'format': 'png', 'captureBeyondViewport': True, 'clip': clip})
    path.write_bytes(base64.b64decode(shot['data']))

def test_screenshots(site, server, browser):
    "CI artifacts under _docs/: the landing page, the most equation-heavy page, and the page with the most plots."
    visit(browser, server + 'index.html')
    _screenshot(browser, site/'screenshot_landing.png')
    pages = [page_of(nb) for nb in NOTEBOOKS]
    count = lambda p, what: (site/p).read_text(encoding='utf-8').count(what)
    best = max(pages, key=lambda p: (count(p, 'class="arithmatex"'), count(p, 'nb-image')))
    assert count(best, 'class="arithmatex"') > 0, "no page has equations"
    seen = visit(browser, server + best)
    assert seen['math'] > 0 and not seen['unrendered'] and not seen['mathErrors'], f"{best}: equations not rendered"
    top = browser.execute_script("const m = document.querySelector('.md-content .arithmatex');"
                                 "return m ? Math.max(0, m.getBoundingClientRect().top + window.scrollY - 300) : 0")
    _screenshot(browser, site/'screenshot_equations.png', top=int(top))
    shots = ['screenshot_landing.png', 'screenshot_equations.png']
    plots = max(pages, key=lambda p: count(p, 'nb-image'))
    if count(plots, 'nb-image'):
        seen = visit(browser, server + plots)
        assert seen['images'] and all(i['ok'] for i in seen['images']), f"{plots}: plots do not load"
        top = browser.execute_script("const m = document.querySelector('.md-content .nb-image img');"
                                     "return Math.max(0, m.getBoundingClientRect().top + window.scrollY - 300)")
        _screenshot(browser, site/'screenshot_plots.png', top=int(top), max_height=2000)
        shots.append('screenshot_plots.png')
    for name in shots:
        data = (site/name).read_bytes()
        assert data.startswith(b'\x89PNG') and len(data) > 10_000, f"{name} looks empty"

def test_settings_table_and_cli_help(site, server, browser):
    "The core page shows every CMGConfig setting in a table (generated from the class); the CLI page shows the real --help."
    from dataclasses import fields
    from selenium.webdriver.common.by import By
    from cmg_nb.core import CMGConfig
    browser.get(server + page_of(ROOT / 'nbs' / '00_core.ipynb'))
    rows = [[td.text.strip() for td in tr.find_elements(By.CSS_SELECTOR, 'td')] for tr in browser.find_elements(By.CSS_SELECTOR, 'table tr')]
    by_name = {r[0]: r for r in rows if len(r) == 4}
    missing = [f.name for f in fields(CMGConfig) if f.name not in by_name]
    assert not missing, f"settings missing from the table on the core page: {missing}"
    assert by_name['n_regions'][2:] == ['4', 'M: 4 = 2x2 grid, 9 = 3x3 grid, any square number']
    import subprocess, sys
    helptext = subprocess.run([sys.executable, '-m', 'cmg_nb', '--help'], capture_output=True, text=True).stdout
    text = visit(browser, server + page_of(ROOT / 'nbs' / '12_cli.ipynb'))['text']
    first = helptext.strip().splitlines()[0]
    assert first in text and all(c in text for c in ('demo', 'tour', 'fit', 'evaluate', 'score')), first

def test_signatures_are_not_cut(site, server, browser):
    "Every show_doc signature on the pages with the longest ones is visible whole: wrapped, not cut or scrolled (issue 16)."
    def widest(p):      # the longest line of a signature block on the page, as text
        blocks = re.findall(r'class="nb-doc"[^>]*>.*?</h3>\s*<div class="highlight"><pre>(.*?)</pre>', p.read_text(encoding='utf-8'), re.S)
        return max((len(html.unescape(re.sub(r'<[^>]+>', '', l))) for b in blocks for l in b.split('\n')), default=0)
    pages = sorted(site.glob('*.html'), key=widest, reverse=True)[:3]
    assert widest(pages[0]) > 100, f"the widest signature has {widest(pages[0])} characters: the check would prove nothing"
    browser.set_window_size(1024, 900)          # a laptop-sized window, where the sidebar and the contents list both show
    for p in pages:
        browser.get(server + p.name)
        cut = browser.execute_script(
            "return [...document.querySelectorAll('h3.nb-doc + .highlight pre code')].filter(e => e.scrollWidth > e.clientWidth + 1)"
            ".map(e => e.closest('.highlight').previousElementSibling.id)")
        n = browser.execute_script("return document.querySelectorAll('h3.nb-doc + .highlight pre').length")
        assert n > 0, f"{p.name}: no show_doc signature found (has the page markup changed?)"
        assert not cut, f"{p.name}: signatures wider than their box (cut or scrolled): {cut[:5]}"
    browser.set_window_size(1400, 1000)

def test_test_cells_are_left_off_pages(bd):
    "Cells without output that mostly check (test_eq, assert, ...) stay in the notebook and are left off the page."
    assert bd.is_test_cell("test_eq(f(1), 2)\ntest_fail(lambda: f(-1), contains='x')", [])
    assert bd.is_test_cell("a = f(1)\ntest_eq(a, 2); test_ne(a, 3)\nassert a > 0", [])
    assert not bd.is_test_cell("a = f(1)\nb = g(a)\ntest_eq(b, 2)", [])
    assert not bd.is_test_cell("test_eq(f(1), 2)\nf(1)", [{"output_type": "execute_result"}])
    # a cell that shows a result and tests it: the page shows the result, the notebook keeps the tests
    assert bd.strip_checks("sp = split(d)\ntest_eq(len(sp), 3)\nassert sp.ok, (\n    'multi-line')\nfor k in sp: test_eq(k, 1)\nsp") == "sp = split(d)\nsp"
    assert bd.strip_checks("x = f(); test_eq(x, 1)\nx") == "x = f(); test_eq(x, 1)\nx"      # a mixed line stays whole
    assert bd.strip_checks("%time f()\ntest_eq(1, 1)") == "%time f()\ntest_eq(1, 1)"           # magics: unchanged
    assert bd.strip_checks("for k in ks: print(k)") == "for k in ks: print(k)"
    md, _ = bd.notebook_to_markdown({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": "test_eq(1, 1)"},
                                               {"cell_type": "code", "metadata": {}, "outputs": [], "source": "x = 1"}]},
                                    Path("p.md"), Path("/tmp/assets"))
    assert "test_eq" not in md and "x = 1" in md

def test_no_link_to_the_placeholder_host_or_repository(site):
    "Links between pages are relative (the linker also rewrites show_doc's outputs); placeholder 'source' links are dropped."
    import configparser
    cfg = configparser.ConfigParser(); cfg.read(ROOT / 'settings.ini')
    host, repo = cfg['DEFAULT']['doc_host'], cfg['DEFAULT']['git_url']
    bad = {p.name: n for p in site.rglob('*.html') if (n := sum(p.read_text(encoding='utf-8').count(u) for u in (host, repo)))}
    assert not bad, f"pages linking to {host} or {repo}: {bad}"

def test_no_leaked_markup(site):
    "No page shows a Markdown attribute list as text ({target=...}) or a raw Markdown link inside code."
    import html as H
    bad = {}
    for p in site.rglob('*.html'):
        t = p.read_text(encoding='utf-8')
        code = " ".join(H.unescape(re.sub(r'<[^>]+>', '', c)) for c in re.findall(r'<code[^>]*>(.*?)</code>', t, re.S))
        hits = [w for w, pat in (("{target=", r'\{\s*target='), ("raw link in code", r'\]\([\w./#-]+\)')) if re.search(pat, H.unescape(re.sub(r'<[^>]+>', '', t)) if w == "{target=" else code)]
        if hits: bad[p.name] = hits
    assert not bad, f"pages with leaked markup: {bad}"
