"""Knowledge distillation: shrink a fine-tuned teacher into a student that keeps its accuracy.

student.py builds the student (layers taken from the teacher, or a given checkpoint),
losses.py holds the loss terms, trainer.py the Hugging Face ``Trainer`` subclass, and
stage.py runs the whole stage for the pipeline (with teacher-logit caching and resume).
"""
