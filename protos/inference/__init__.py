"""The Open Inference Protocol (KServe v2 / Triton gRPC), as published, and its generated stubs.

``open_inference_grpc.proto`` is the specification's file unchanged (Apache-2.0, see NOTICE);
``open_inference_grpc_pb2`` and ``open_inference_grpc_pb2_grpc`` are generated from it by
``python -m protos.generate``::

    from protos.inference import open_inference_grpc_pb2, open_inference_grpc_pb2_grpc
"""
