"""The pipeline room: wires ingest → indicators → scoring → report into `scan`."""

from kalasag.pipeline.progress import Stages
from kalasag.pipeline.scan import ScanResult, indicator_refs, scan, versions

__all__ = ["ScanResult", "Stages", "indicator_refs", "scan", "versions"]
