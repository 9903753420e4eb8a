"""A seeded, deterministic synthetic podcast network with ground truth.

`network.build_network` makes tenants, shows and episodes with a known share of defects;
`feeds.render_feed` writes each show's RSS; `server.SimulatorServer` serves them on 127.0.0.1;
`truth.ground_truth` says what a correct pipeline must end up with.
"""
