// MathJax 3, served from this site (assets/mathjax/, copied from the django-static-mathjax wheel).
// pymdownx.arithmatex (generic mode) wraps $...$ / $$...$$ in \(...\) / \[...\] spans of class
// "arithmatex"; only those are typeset, so code and outputs that contain dollars are left alone.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams"
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex"
  },
  svg: { fontCache: "global" }
};
