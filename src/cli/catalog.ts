import { createCatalog } from '../catalog/catalog.js';
import { CATALOG_FORMATS, exportCatalog, type CatalogFormat } from '../catalog/formats.js';
import { loadConfigFile } from '../config/file.js';
import { ConfigError } from '../errors.js';
import { outJson } from './output.js';

/** `catalog --format anthropic|openai|json [--config file]`: the active tool definitions. */
export function printCatalog(options: { format?: string; config?: string }): void {
  const format = options.format ?? 'json';
  if (!(CATALOG_FORMATS as readonly string[]).includes(format)) {
    throw new ConfigError(
      '--format',
      `${JSON.stringify(format)} is not a format. Fix: use ${CATALOG_FORMATS.join(', ')}.`,
    );
  }
  const file = options.config ? loadConfigFile(options.config) : {};
  outJson(exportCatalog(createCatalog(file.events ?? {}), format as CatalogFormat));
}
