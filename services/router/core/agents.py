"""Agents as the assignment sees them: who they are (languages, skills, queues, capacity) and
whether they are there. Declared in the playbook and managed through the API; an agent the API
has written replaces the playbook's agent of the same id (the API wins), and presence set
through the API overrides either."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from shared.events import Name

AgentId = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
]
Skill = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
Language = Annotated[str, Field(min_length=2, max_length=8, pattern=r"^[a-z]{2,3}$")]
# A case whose language the classifier could not tell is served in any language.
UNDETERMINED = frozenset({"", "und"})


class Presence(StrEnum):
    ONLINE = "online"  # takes cases
    AWAY = "away"  # keeps the cases it has, takes no new one
    OFFLINE = "offline"


class AgentProfile(BaseModel):
    """How an agent is declared (a playbook entry, or the body of `PUT /v1/agents/{id}`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name = Field(default="", max_length=128)
    languages: list[Language] = Field(min_length=1, max_length=20, description="ISO 639-1")
    skills: list[Skill] = Field(default_factory=list, max_length=50, description="Primary")
    secondary_skills: list[Skill] = Field(
        default_factory=list,
        max_length=50,
        description="Used once a case has waited the playbook's `widen_after_minutes`",
    )
    queues: list[Skill] = Field(
        default_factory=list, max_length=50, description="Queues served (empty: every queue)"
    )
    capacity: int = Field(default=5, ge=0, le=1000, description="Open cases at most")
    presence: Presence = Presence.OFFLINE
    kind: Literal["social_agent", "community_manager"] = "social_agent"

    @field_validator("languages", "skills", "secondary_skills", "queues")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        return sorted(set(values))


class Agent(AgentProfile):
    """An agent on shift, with when it was last given a case (the longest idle goes first)."""

    agent_id: AgentId
    last_assigned_at: AwareDatetime | None = None
    source: Literal["playbook", "api"] = Field(
        default="api", description="Where its definition comes from (the API's wins)"
    )

    def serves_language(self, base: str) -> bool:
        """Whether the agent serves a case in this base language (`es`, not `es-MX`)."""
        return base in UNDETERMINED or base in self.languages


def base_language(tag: str) -> str:
    return tag.split("-")[0].lower()
