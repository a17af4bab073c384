from edgeprune import data


def load_any(name):
    """Load with every layout and variable lengths accepted, as code built for them (IR v2) will."""
    return data.load(name, layouts=data.ANY_LAYOUT, variable_length=True)
