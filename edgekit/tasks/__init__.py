"""Tasks ``convert`` knows (conversion half of the task registry); see registry.py."""

from edgekit.tasks import image_classification, text_classification
from edgekit.tasks.registry import ENTRY_POINT_GROUP, TaskSpec, get_task, register_task, tasks

register_task(text_classification.SPEC)
register_task(image_classification.SPEC)

__all__ = ["ENTRY_POINT_GROUP", "TaskSpec", "get_task", "register_task", "tasks"]
