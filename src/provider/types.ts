/** The OpenFaaS provider API's JSON shapes (see the OpenFaaS contract), as this appliance uses them. */

/** Resource amounts in Kubernetes quantity notation (`128Mi`, `100m`), kept as sent. */
export interface ResourceAmounts {
  memory?: string;
  cpu?: string;
}

/** The body of `POST`/`PUT /system/functions`. */
export interface FunctionDeployment {
  service: string;
  image: string;
  namespace?: string;
  envProcess?: string;
  envVars?: Record<string, string>;
  constraints?: string[];
  secrets?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  limits?: ResourceAmounts;
  requests?: ResourceAmounts;
  readOnlyRootFilesystem?: boolean;
}

/** Usage of a function's replicas, from task metrics. */
export interface FunctionUsage {
  cpu: number;
  totalMemoryBytes: number;
}

/** An element of `GET /system/functions` and the body of `GET /system/function/NAME`. */
export interface FunctionStatus {
  name: string;
  image: string;
  namespace: string;
  envProcess?: string;
  envVars?: Record<string, string>;
  constraints?: string[];
  secrets?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  limits?: ResourceAmounts;
  requests?: ResourceAmounts;
  readOnlyRootFilesystem?: boolean;
  invocationCount: number;
  replicas: number;
  availableReplicas: number;
  /** RFC 3339. */
  createdAt: string;
  usage?: FunctionUsage;
}

/** The namespace functions go to unless a request names another. */
export const DEFAULT_NAMESPACE = "openfaas-fn";
