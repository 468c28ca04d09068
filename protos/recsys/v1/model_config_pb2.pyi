from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_TYPE_UNSPECIFIED: _ClassVar[DataType]
    DATA_TYPE_INT64: _ClassVar[DataType]
    DATA_TYPE_FLOAT32: _ClassVar[DataType]

class Architecture(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ARCHITECTURE_UNSPECIFIED: _ClassVar[Architecture]
    ARCHITECTURE_MF: _ClassVar[Architecture]
    ARCHITECTURE_DENSE: _ClassVar[Architecture]
    ARCHITECTURE_LSTM: _ClassVar[Architecture]
    ARCHITECTURE_GCN: _ClassVar[Architecture]

class TensorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENSOR_KIND_UNSPECIFIED: _ClassVar[TensorKind]
    TENSOR_KIND_USER_INDEX: _ClassVar[TensorKind]
    TENSOR_KIND_ITEM_INDEX: _ClassVar[TensorKind]
    TENSOR_KIND_HISTORY_ITEMS: _ClassVar[TensorKind]
    TENSOR_KIND_HISTORY_RATINGS: _ClassVar[TensorKind]
    TENSOR_KIND_HISTORY_LENGTHS: _ClassVar[TensorKind]
    TENSOR_KIND_RATING: _ClassVar[TensorKind]
    TENSOR_KIND_RATING_SCORES: _ClassVar[TensorKind]
    TENSOR_KIND_RANKING_SCORES: _ClassVar[TensorKind]

class ArtifactFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ARTIFACT_FORMAT_UNSPECIFIED: _ClassVar[ArtifactFormat]
    ARTIFACT_FORMAT_ONNX: _ClassVar[ArtifactFormat]
    ARTIFACT_FORMAT_TORCHSCRIPT: _ClassVar[ArtifactFormat]

class SideFileKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_FILE_KIND_UNSPECIFIED: _ClassVar[SideFileKind]
    SIDE_FILE_KIND_USER_IDS: _ClassVar[SideFileKind]
    SIDE_FILE_KIND_ITEM_IDS: _ClassVar[SideFileKind]
    SIDE_FILE_KIND_ITEM_POPULARITY: _ClassVar[SideFileKind]
    SIDE_FILE_KIND_HISTORY_OFFSETS: _ClassVar[SideFileKind]
    SIDE_FILE_KIND_HISTORY_ITEMS: _ClassVar[SideFileKind]
    SIDE_FILE_KIND_HISTORY_RATINGS: _ClassVar[SideFileKind]
    SIDE_FILE_KIND_RANKING_USER_VECTORS: _ClassVar[SideFileKind]
    SIDE_FILE_KIND_RANKING_ITEM_VECTORS: _ClassVar[SideFileKind]
    SIDE_FILE_KIND_RANKING_ITEM_BIAS: _ClassVar[SideFileKind]
DATA_TYPE_UNSPECIFIED: DataType
DATA_TYPE_INT64: DataType
DATA_TYPE_FLOAT32: DataType
ARCHITECTURE_UNSPECIFIED: Architecture
ARCHITECTURE_MF: Architecture
ARCHITECTURE_DENSE: Architecture
ARCHITECTURE_LSTM: Architecture
ARCHITECTURE_GCN: Architecture
TENSOR_KIND_UNSPECIFIED: TensorKind
TENSOR_KIND_USER_INDEX: TensorKind
TENSOR_KIND_ITEM_INDEX: TensorKind
TENSOR_KIND_HISTORY_ITEMS: TensorKind
TENSOR_KIND_HISTORY_RATINGS: TensorKind
TENSOR_KIND_HISTORY_LENGTHS: TensorKind
TENSOR_KIND_RATING: TensorKind
TENSOR_KIND_RATING_SCORES: TensorKind
TENSOR_KIND_RANKING_SCORES: TensorKind
ARTIFACT_FORMAT_UNSPECIFIED: ArtifactFormat
ARTIFACT_FORMAT_ONNX: ArtifactFormat
ARTIFACT_FORMAT_TORCHSCRIPT: ArtifactFormat
SIDE_FILE_KIND_UNSPECIFIED: SideFileKind
SIDE_FILE_KIND_USER_IDS: SideFileKind
SIDE_FILE_KIND_ITEM_IDS: SideFileKind
SIDE_FILE_KIND_ITEM_POPULARITY: SideFileKind
SIDE_FILE_KIND_HISTORY_OFFSETS: SideFileKind
SIDE_FILE_KIND_HISTORY_ITEMS: SideFileKind
SIDE_FILE_KIND_HISTORY_RATINGS: SideFileKind
SIDE_FILE_KIND_RANKING_USER_VECTORS: SideFileKind
SIDE_FILE_KIND_RANKING_ITEM_VECTORS: SideFileKind
SIDE_FILE_KIND_RANKING_ITEM_BIAS: SideFileKind

class TensorSpec(_message.Message):
    __slots__ = ("name", "dtype", "shape", "description", "kind")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: DataType
    shape: _containers.RepeatedScalarFieldContainer[int]
    description: str
    kind: TensorKind
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[_Union[DataType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., description: _Optional[str] = ..., kind: _Optional[_Union[TensorKind, str]] = ...) -> None: ...

class Signature(_message.Message):
    __slots__ = ("name", "inputs", "outputs", "reads_stored_history")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    READS_STORED_HISTORY_FIELD_NUMBER: _ClassVar[int]
    name: str
    inputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    outputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    reads_stored_history: bool
    def __init__(self, name: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., reads_stored_history: _Optional[bool] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("format", "path", "signatures", "sha256", "onnx_opset")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ONNX_OPSET_FIELD_NUMBER: _ClassVar[int]
    format: ArtifactFormat
    path: str
    signatures: _containers.RepeatedScalarFieldContainer[str]
    sha256: str
    onnx_opset: int
    def __init__(self, format: _Optional[_Union[ArtifactFormat, str]] = ..., path: _Optional[str] = ..., signatures: _Optional[_Iterable[str]] = ..., sha256: _Optional[str] = ..., onnx_opset: _Optional[int] = ...) -> None: ...

class SideFile(_message.Message):
    __slots__ = ("kind", "path", "sha256")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    kind: SideFileKind
    path: str
    sha256: str
    def __init__(self, kind: _Optional[_Union[SideFileKind, str]] = ..., path: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class RatingScale(_message.Message):
    __slots__ = ("min", "max")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    min: float
    max: float
    def __init__(self, min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class ParityCheck(_message.Message):
    __slots__ = ("format", "signature", "batch_size", "history_length", "max_abs_diff", "top_k", "top_k_mismatched_rows")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_DIFF_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TOP_K_MISMATCHED_ROWS_FIELD_NUMBER: _ClassVar[int]
    format: ArtifactFormat
    signature: str
    batch_size: int
    history_length: int
    max_abs_diff: float
    top_k: int
    top_k_mismatched_rows: int
    def __init__(self, format: _Optional[_Union[ArtifactFormat, str]] = ..., signature: _Optional[str] = ..., batch_size: _Optional[int] = ..., history_length: _Optional[int] = ..., max_abs_diff: _Optional[float] = ..., top_k: _Optional[int] = ..., top_k_mismatched_rows: _Optional[int] = ...) -> None: ...

class Parity(_message.Message):
    __slots__ = ("tolerance", "max_abs_diff", "checks")
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_DIFF_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    tolerance: float
    max_abs_diff: float
    checks: _containers.RepeatedCompositeFieldContainer[ParityCheck]
    def __init__(self, tolerance: _Optional[float] = ..., max_abs_diff: _Optional[float] = ..., checks: _Optional[_Iterable[_Union[ParityCheck, _Mapping]]] = ...) -> None: ...

class RetrievalIndex(_message.Message):
    __slots__ = ("path", "sha256", "kind", "metric", "parameters", "min_num_items", "signature", "dim", "num_items", "recall_at_10", "recall_users", "build_seconds")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PATH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    MIN_NUM_ITEMS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    NUM_ITEMS_FIELD_NUMBER: _ClassVar[int]
    RECALL_AT_10_FIELD_NUMBER: _ClassVar[int]
    RECALL_USERS_FIELD_NUMBER: _ClassVar[int]
    BUILD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    path: str
    sha256: str
    kind: str
    metric: str
    parameters: _containers.ScalarMap[str, str]
    min_num_items: int
    signature: str
    dim: int
    num_items: int
    recall_at_10: float
    recall_users: int
    build_seconds: float
    def __init__(self, path: _Optional[str] = ..., sha256: _Optional[str] = ..., kind: _Optional[str] = ..., metric: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., min_num_items: _Optional[int] = ..., signature: _Optional[str] = ..., dim: _Optional[int] = ..., num_items: _Optional[int] = ..., recall_at_10: _Optional[float] = ..., recall_users: _Optional[int] = ..., build_seconds: _Optional[float] = ...) -> None: ...

class ModelConfig(_message.Message):
    __slots__ = ("name", "version", "architecture", "signatures", "rating_scale", "num_users", "num_items", "max_history_length", "artifacts", "side_files", "training_metrics", "source_checkpoint_sha256", "parity", "created_at", "hyperparameters", "exporter_version", "architecture_name", "retrieval_index")
    class TrainingMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class HyperparametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    RATING_SCALE_FIELD_NUMBER: _ClassVar[int]
    NUM_USERS_FIELD_NUMBER: _ClassVar[int]
    NUM_ITEMS_FIELD_NUMBER: _ClassVar[int]
    MAX_HISTORY_LENGTH_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    SIDE_FILES_FIELD_NUMBER: _ClassVar[int]
    TRAINING_METRICS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_CHECKPOINT_SHA256_FIELD_NUMBER: _ClassVar[int]
    PARITY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    EXPORTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_NAME_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_INDEX_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    architecture: Architecture
    signatures: _containers.RepeatedCompositeFieldContainer[Signature]
    rating_scale: RatingScale
    num_users: int
    num_items: int
    max_history_length: int
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    side_files: _containers.RepeatedCompositeFieldContainer[SideFile]
    training_metrics: _containers.ScalarMap[str, float]
    source_checkpoint_sha256: str
    parity: Parity
    created_at: str
    hyperparameters: _containers.ScalarMap[str, str]
    exporter_version: str
    architecture_name: str
    retrieval_index: RetrievalIndex
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., architecture: _Optional[_Union[Architecture, str]] = ..., signatures: _Optional[_Iterable[_Union[Signature, _Mapping]]] = ..., rating_scale: _Optional[_Union[RatingScale, _Mapping]] = ..., num_users: _Optional[int] = ..., num_items: _Optional[int] = ..., max_history_length: _Optional[int] = ..., artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ..., side_files: _Optional[_Iterable[_Union[SideFile, _Mapping]]] = ..., training_metrics: _Optional[_Mapping[str, float]] = ..., source_checkpoint_sha256: _Optional[str] = ..., parity: _Optional[_Union[Parity, _Mapping]] = ..., created_at: _Optional[str] = ..., hyperparameters: _Optional[_Mapping[str, str]] = ..., exporter_version: _Optional[str] = ..., architecture_name: _Optional[str] = ..., retrieval_index: _Optional[_Union[RetrievalIndex, _Mapping]] = ...) -> None: ...
