"""Training: one objective per fine-tuning method, text guidance, the Fabric loop, its schedule,
and pretraining.
"""
