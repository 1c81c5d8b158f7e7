import type { attestd } from '../../gen/proto.js';
import type { Handler } from '../handler.js';

export const getStatus: Handler<attestd.lease.v1.GetStatusRequest.$Properties> = async (_conn, _req, ctx) => {
  return { getStatus: ctx.status.report() };
};
