# The server's image: built by the repo's own install (which builds), run with production dependencies only.

# Node 20 as package.json's engines asks (>=20.18.1); the version the tests ran on.
ARG NODE_VERSION=20.20.2

# --- build: the workspace installed as CI installs it. postinstall runs `pnpm build`.
FROM node:${NODE_VERSION}-bookworm-slim AS build
RUN npm install -g pnpm@12.4.2
WORKDIR /repo
COPY . .
RUN pnpm install --frozen-lockfile
# The server with its production dependencies only: its package.json `files` (dist/), and the workspace
# packages it uses, each with its own `files` (dist/). test/process/image.test.ts runs this very line.
RUN pnpm deploy --filter @universo/server --prod /deploy/server

# --- runtime: no pnpm, no dev dependencies, no sources.
FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the server: it writes nothing but stdout.
COPY --from=build /deploy/server /app/packages/server
# The image's `node` user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# The server's default PORT.
EXPOSE 3000
# Node images have no curl: ask /health with Node's own fetch.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT || 3000}/health`, { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself (main.ts drains, closes Redis, exits 0).
# No init process is needed: the server starts no child processes, so there is nothing to reap.
CMD ["node", "packages/server/dist/main.js"]
