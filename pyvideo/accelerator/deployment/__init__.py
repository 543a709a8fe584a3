"""Turning trained models into their deploy form.

``convert_to_deployable_form`` converts every efficient block of a model; ``transmute_model`` first replaces the
plain ``nn.Conv3d`` layers of any model by equivalent efficient blocks so that it can be converted too.
"""
from .common.model_transmuter import EFFICIENT_BLOCK_TRANSMUTER_REGISTRY, transmute_model
from .mobile_cpu import transmuter as _register_mobile_cpu  # noqa: F401  (fills the registry)
from .mobile_cpu.utils.model_conversion import convert_to_deployable_form

__all__ = ["EFFICIENT_BLOCK_TRANSMUTER_REGISTRY", "convert_to_deployable_form", "transmute_model"]
