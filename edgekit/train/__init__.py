"""Training stages: fine-tuning a head (``finetune``) and knowledge distillation (``distill``)."""
