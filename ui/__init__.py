"""Small helper package for the Streamlit pages: cached loaders, plot builders, the taxonomy
graph, job widgets. Pages import from here; ``core`` never does. Nothing here imports torch."""
