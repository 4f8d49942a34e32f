r"""The three distance groups of SPIPS and the channels of each of their maps.

Traditional maps (eqs. 1-3) form one 7-channel map; the backbone's layers ``1..L-2`` are the
perceptual group (eq. 7) and its two deepest layers ``L-1, L`` the semantic group (eq. 8).

Reference:
    Lao & Yu, "SPIPS: Scene Perceived Image Perceptual Score", 2025, eqs. (7)-(8).
"""

from typing import Dict, Sequence, Tuple

from spips_pyiqa.archs.deep_features import SEMANTIC_LAYERS, backbone_channels
from spips_pyiqa.archs.traditional_maps import TRADITIONAL_CHANNELS
from spips_pyiqa.metric_configs import GROUPS

__all__ = ['DEEP_GROUPS', 'GROUPS', 'checked_groups', 'group_channels']

#: The groups the backbone's features form (eqs. 7-8), in fusion order.
DEEP_GROUPS = ('perceptual', 'semantic')


def checked_groups(groups: Sequence[str]) -> Tuple[str, ...]:
    """Validate a group selection and return it in canonical (fusion) order."""
    groups = tuple(groups)
    unknown = set(groups) - set(GROUPS)
    if unknown or len(set(groups)) != len(groups) or not set(groups) & set(DEEP_GROUPS):
        raise ValueError(
            f'groups must be distinct names from {GROUPS} including a deep group, got {groups}'
        )
    return tuple(g for g in GROUPS if g in groups)


def group_channels(net: str, groups: Sequence[str]) -> Dict[str, Tuple[int, ...]]:
    """Channels of each map of each group (eqs. 1-8) for backbone ``net``, in fusion order."""
    layers = backbone_channels(net)
    channels = {
        'traditional': (TRADITIONAL_CHANNELS,),
        'perceptual': layers[:-SEMANTIC_LAYERS],
        'semantic': layers[-SEMANTIC_LAYERS:],
    }
    return {g: channels[g] for g in checked_groups(groups)}
