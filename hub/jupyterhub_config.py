"""JupyterHub's configuration for a class on one machine (hub/README.md; `make class`, tests/hub).

`hub/classroom.py` starts JupyterHub with this file and says everything that varies from run to run
through environment variables, so that the configuration itself stays the same for the lecturer's
demo (`make class`) and for the end-to-end test:

    RLCOURSE_HUB_URL        where students connect, e.g. http://127.0.0.1:8000
    RLCOURSE_HUB_API_PORT   the hub's own port (the proxy forwards /hub/ there) and the proxy's API port + 1
    RLCOURSE_HUB_STATE      a folder only root can read: the hub's database, cookie secret, proxy pid
    RLCOURSE_HUB_ENV        the course environment (a venv every user can run) whose servers students get
    RLCOURSE_HUB_PROXY      the configurable-http-proxy executable (from npm)
    RLCOURSE_HUB_USERS      the unix users allowed to log in, comma-separated
    RLCOURSE_HUB_ADMINS     those of them who are admins (the instructor)
    RLCOURSE_HUB_TOKEN      the API token of the "classroom" service (what the test drives the class with)

Logins are checked against the machine's own accounts (PAM: the default authenticator), and each
user's server runs as that unix user (LocalProcessSpawner), so one student cannot read another's home.
"""

import os

c = get_config()  # noqa: F821 (JupyterHub defines get_config when it loads this file)

env = os.environ
state = env["RLCOURSE_HUB_STATE"]
course_env = env["RLCOURSE_HUB_ENV"]
api_port = int(env["RLCOURSE_HUB_API_PORT"])

c.JupyterHub.bind_url = env["RLCOURSE_HUB_URL"]
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{api_port}"
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state}/jupyterhub_cookie_secret"
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every student's server
c.JupyterHub.cleanup_proxy = True

c.ConfigurableHTTPProxy.command = [env["RLCOURSE_HUB_PROXY"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{api_port + 1}"
c.ConfigurableHTTPProxy.pid_file = f"{state}/proxy.pid"

# Who may log in: exactly the course's accounts (PAM checks their unix passwords).
c.Authenticator.allowed_users = set(filter(None, env["RLCOURSE_HUB_USERS"].split(",")))
c.Authenticator.admin_users = set(filter(None, env.get("RLCOURSE_HUB_ADMINS", "").split(",")))

# Every student's server runs the course environment's JupyterLab, in their own home.
c.Spawner.cmd = [f"{course_env}/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.environment = {"PATH": f"{course_env}/bin:/usr/local/bin:/usr/bin:/bin"}
c.Spawner.start_timeout = 120  # a 2-core machine spawning several servers at once is slow
c.Spawner.http_timeout = 90

# The service the test (or a course's scripts) acts through: start and stop servers, use them.
c.JupyterHub.services = [{"name": "classroom", "api_token": env["RLCOURSE_HUB_TOKEN"]}]
c.JupyterHub.load_roles = [
    {
        "name": "classroom",
        "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"],
        "services": ["classroom"],
    }
]
