// PM2: the built server in cluster mode, 4 workers sharing one budget through Redis (docs/deployment.md).
// `.cjs` because the repo is "type": "module": pm2 require()s its config, and Node 20.18 cannot require
// an ES module. Start it with `pm2 start ecosystem.config.cjs --env production`.
const INSTANCES = 4

module.exports = {
  apps: [
    {
      name: 'universo-server',
      script: 'packages/server/dist/main.js',
      // Paths are relative to this file, wherever pm2 is started from.
      cwd: __dirname,
      exec_mode: 'cluster',
      instances: INSTANCES,
      // `pm2 stop` sends SIGINT, which the server handles like SIGTERM: it drains for up to 8 s, then
      // closes Redis (at most 2 s more). pm2's default kill_timeout of 1.6 s would SIGKILL a worker
      // mid-drain, leaving its requests cut and its Redis connection to time out.
      kill_timeout: 12_000,
      // One log file for the 4 workers, in $PM2_HOME/logs (universo-server-out.log and -error.log).
      merge_logs: true,
      // No git metadata: pm2 would run git in this directory on every start.
      vizion: false,
      env_production: {
        NODE_ENV: 'production',
        // Taken from the environment pm2 is started in, so no password is written in this file.
        REDIS_URL: process.env.REDIS_URL ?? 'redis://localhost:6379',
        // During a Redis outage each worker allows max / 4, so the 4 still allow about max together.
        // Several machines each running this file: set RATE_LIMIT_INSTANCES to the total.
        RATE_LIMIT_INSTANCES: process.env.RATE_LIMIT_INSTANCES ?? String(INSTANCES),
      },
    },
  ],
}
