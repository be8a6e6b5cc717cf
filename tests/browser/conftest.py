# The notebook here is opened by tests/test_browser.py in a real JupyterLab; notebook collectors
# (nbval, nbmake) must not run it on their own.
collect_ignore_glob = ["*.ipynb"]
