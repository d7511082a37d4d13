# iommu-arbiter: the service, on its embedded SQLite database by default
# (DATABASE_URL=file:...), or on PostgreSQL with DATABASE_URL=postgresql://...
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 builds from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY prisma.config.ts ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
COPY examples ./examples
COPY public ./public
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
# Off loopback the service needs a token table: run with TOKENS_FILE (a
# mounted secret) or TOKENS set, see README "Identities and roles".
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATABASE_URL=file:/data/iommu-arbiter.db LOG_LEVEL=info
COPY --from=build /app /app
# Not root: the image's `node` user, owning only the database directory (a
# new named volume takes this ownership from the image).
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
# Ready, not just alive (/readyz: the database answers, migrations applied,
# not shutting down), on the port the service is configured with. The start
# period covers opening a large database (its integrity check reads every page).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s CMD node -e "const h=process.env.HOST||'';const a=h===''||h==='0.0.0.0'||h==='::'?'127.0.0.1':h.includes(':')?'['+h+']':h;fetch('http://'+a+':'+(process.env.PORT||'3000')+'/readyz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM: the service drains and exits 0 within --shutdown-timeout (8 s by
# default), inside Docker's 10 s grace before SIGKILL.
STOPSIGNAL SIGTERM
# The launcher holds the memory settings the service is measured with; it
# execs node, so node is PID 1 and receives the stop signal itself.
CMD ["bin/iommu-arbiter-server"]
