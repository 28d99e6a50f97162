"""Build hook for the optional C extension ``etl_express._native`` (metadata is in pyproject.toml).

``optional=True``: on a machine without a C compiler the build warns and the package installs
without it; etl-express then uses its pure-Python paths, which give the same bytes.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "etl_express._native",
            sources=["src/etl_express/_native.c", "src/etl_express/_copyread.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
