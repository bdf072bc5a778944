// The layering rule, checked in CI: edges -> core -> cluster ports -> transports.
// Anything that goes upward goes through an interface defined below (ClusterNode,
// transport events, domain events). `npm run lint` runs it.
const layer = (name, path, mayImport) => ({
  name: `layer-${name}`,
  comment: `${path} may import only ${mayImport.join(', ') || 'nothing of ours'}`,
  severity: 'error',
  from: { path: `^src/${path}/` },
  to: { path: '^src/', pathNot: [`^src/${path}/`, ...mayImport.map((p) => `^src/${p}`)] },
});

module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    layer('protocol', 'protocol', []),
    layer('metrics', 'metrics', []),
    layer('transports', 'transports', ['config/limits']),
    layer('cluster', 'cluster', ['transports/transport', 'config/limits', 'protocol/']),
    layer('apps', 'apps', ['config/schema', 'config/app-policy', 'config/limits', 'protocol/']),
    layer('conn', 'conn', ['apps/', 'metrics/', 'protocol/', 'config/limits']),
    layer('core', 'core', ['cluster/ports', 'conn/', 'apps/', 'metrics/', 'protocol/', 'config/limits']),
    layer('rate-limit', 'rate-limit', []),
    layer('webhooks', 'webhooks', ['core/events', 'apps/', 'metrics/', 'protocol/', 'config/limits', 'config/schema']),
    layer('edge-ws', 'edge/ws', [
      'edge/client-ip',
      'edge/origins',
      'core/',
      'conn/',
      'apps/',
      'metrics/',
      'protocol/',
      'rate-limit/',
      'config/limits',
    ]),
    layer('edge-http', 'edge/http', [
      'edge/client-ip',
      'edge/origins',
      'core/',
      'conn/',
      'apps/',
      'metrics/',
      'protocol/',
      'rate-limit/',
      'config/limits',
    ]),
    layer('edge-admin', 'edge/admin', ['core/', 'metrics/', 'protocol/', 'config/limits']),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js'],
    },
  },
};
