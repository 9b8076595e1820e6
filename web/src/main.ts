// The web app's entry: the shell (header, alerts, main) is in index.html; the router fills main.

import "./style.css";
import { ApiError, reportError } from "./api";
import { annotatePage } from "./pages/annotate";
import { annotationStatsPage } from "./pages/annotation-stats";
import { datasetPage } from "./pages/dataset";
import { explorePage } from "./pages/explore";
import { jobPage } from "./pages/job";
import { mapAreaPage } from "./pages/map-area";
import { modelPage } from "./pages/model";
import { membersPage, tokensPage } from "./pages/members";
import { projectPage } from "./pages/project";
import { projectsPage } from "./pages/projects";
import { runPage } from "./pages/run";
import { signinPage } from "./pages/signin";
import { subscriptionPage } from "./pages/subscription";
import { newSubscriptionPage } from "./pages/subscription-new";
import { subscriptionsPage } from "./pages/subscriptions";
import { type Route, startRouter } from "./router";
import { signedIn } from "./session";

export const routes: Route[] = [
  { pattern: "/signin", title: "Sign in", page: signinPage },
  { pattern: "/projects", title: "Projects", page: signedIn(projectsPage) },
  { pattern: "/projects/:slug", title: "Project", page: signedIn(projectPage) },
  { pattern: "/projects/:slug/explore", title: "Explore imagery", page: signedIn(explorePage) },
  { pattern: "/projects/:slug/datasets/:ref", title: "Dataset", page: signedIn(datasetPage) },
  { pattern: "/projects/:slug/runs/:id", title: "Run", page: signedIn(runPage) },
  { pattern: "/projects/:slug/models/:name", title: "Model", page: signedIn(modelPage) },
  { pattern: "/projects/:slug/map-area", title: "Map an area now", page: signedIn(mapAreaPage) },
  { pattern: "/projects/:slug/annotate/:set", title: "Annotate", page: signedIn(annotatePage) },
  { pattern: "/projects/:slug/annotate/:set/tasks/:task", title: "Annotate a task", page: signedIn(annotatePage) },
  { pattern: "/projects/:slug/annotate/:set/stats", title: "Annotation quality", page: signedIn(annotationStatsPage) },
  { pattern: "/projects/:slug/annotate/:set/stats/:user", title: "Annotator", page: signedIn(annotationStatsPage) },
  { pattern: "/projects/:slug/subscriptions", title: "Subscriptions", page: signedIn(subscriptionsPage) },
  { pattern: "/projects/:slug/subscriptions/new", title: "New subscription", page: signedIn(newSubscriptionPage) },
  { pattern: "/projects/:slug/subscriptions/:id", title: "Subscription", page: signedIn(subscriptionPage) },
  { pattern: "/projects/:slug/members", title: "Members", page: signedIn(membersPage) },
  { pattern: "/tokens", title: "API tokens", page: signedIn(tokensPage) },
  { pattern: "/jobs/:id", title: "Job", page: signedIn(jobPage) },
];

// An API error nobody caught is still shown to the user (and is then handled, not a page error).
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof ApiError) {
    event.preventDefault();
    reportError(event.reason);
  }
});

const main = document.getElementById("main");
if (!main) throw new Error("index.html has no <main id=\"main\">");
startRouter(main, routes, "#/projects");
