from tests.orchestration.conftest import warehouse

__all__ = ["warehouse"]
