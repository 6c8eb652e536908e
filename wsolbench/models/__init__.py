"""Models: the ViT trunk, attention access, the method interface and the losses the
method plugins share."""
