"""Datasets as files: DomainNet / ImageNet-family layouts, split carving, GX validation, image loading."""
