"""etl-express source connector for {{ cookiecutter.system_name }}."""

from .source import {{ cookiecutter.class_name }}, {{ cookiecutter.class_name | replace("Source", "") }}Config

__all__ = ["{{ cookiecutter.class_name }}", "{{ cookiecutter.class_name | replace("Source", "") }}Config"]
