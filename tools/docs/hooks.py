"MkDocs hooks of the offline docs site (loaded by the `hooks:` entry that tools/build_docs.py writes)."
import re

def slugify(value, separator='-'):
    "Heading ids as nbdev's links expect them: lower case, keeping `_` and `.` (`CMGConfig.replace` -> `cmgconfig.replace`)."
    value = re.sub(r'[^\w\s.\-]', '', value).strip().lower()
    return re.sub(r'[\s]+', separator, value)

def on_config(config, **kwargs):
    config.mdx_configs.setdefault('toc', {})['slugify'] = slugify
    return config
