"""The conversion pipeline: recipe → source → reference export → variants → gate → bench →
recommendation → bundle summary. ``pipeline.convert`` is the entry point."""
