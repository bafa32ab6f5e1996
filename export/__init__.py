"""Export the threshold filter as a versioned TF Serving SavedModel and a TFLite file.

Kept import-free so ``python -m export --help`` answers before TensorFlow loads.
"""
