"""Data in and out: fg-research's CSV, ``.npy`` files read a chunk at a time, sources and sinks of
series for the streaming path, bundled and archive data sets, and safe archive extraction."""
