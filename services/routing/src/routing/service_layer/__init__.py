"""Use cases of the routing service: async handlers taking a command or event and their ports."""
