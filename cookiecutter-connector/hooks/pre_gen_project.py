"""Refuse a connector name that cannot be a Python identifier and an entry-point name."""

import re
import sys

NAME = "{{ cookiecutter.connector_name }}"

if not re.fullmatch(r"[a-z][a-z0-9_]*", NAME):
    sys.exit(f"ERROR: connector_name {NAME!r} must be snake_case: lower-case letters, digits and '_', "
             "starting with a letter (e.g. acme_crm)")
