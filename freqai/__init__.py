"""FreqAI models, training jobs, model cache and predictions."""
