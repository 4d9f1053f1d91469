"""The vistok reconstruction Space: decoding uploads, loading tokenizers, measuring and drawing reconstructions.

``app.py`` only lays out the Gradio page; everything it shows is computed here, so it can be tested without a
browser.
"""
