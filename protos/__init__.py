"""The protobuf contracts of the recommender service and of the exported model.

``protos.recsys.v1`` holds the generated Python stubs: ``service_pb2`` (the
serving API), ``service_pb2_grpc`` (client stub and servicer base) and
``model_config_pb2`` (the exported model's config)::

    from protos.recsys.v1 import model_config_pb2, service_pb2, service_pb2_grpc

Regenerate them with ``python -m protos.generate``. This package imports
nothing else of ours.
"""
