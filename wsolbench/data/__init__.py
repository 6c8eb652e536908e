"""Data: the dataset interface, annotation readers, image files and the evaluation
frames (crop / resize), k-shot selection."""
