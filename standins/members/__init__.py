"""Member data for the iMIS stand-in: a seeded generator (``dataset``) and fixed sets for unit tests (``fixtures``)."""

from standins.members.dataset import AS_OF, CHAPTERS, MEMBER_TYPES, Member, generate, iter_members
from standins.members.fixtures import SMALL

__all__ = ["AS_OF", "CHAPTERS", "MEMBER_TYPES", "SMALL", "Member", "generate", "iter_members"]
