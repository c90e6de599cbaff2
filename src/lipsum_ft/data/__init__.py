"""Datasets as files: the DigitDomains renderer, DomainNet/ImageNet layouts, splits, GX validation,
image loading.
"""
